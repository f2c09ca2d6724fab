"""The sender: posts due deliveries, in order per (endpoint, payout), concurrently
across pairs, and records every attempt.

Order: a delivery is due only when every earlier version of its payout for its
endpoint has been acknowledged (a 2xx), and a pair has at most one request in
flight; so a receiver sees `payout.completed` only after it acknowledged
`payout.created` and `payout.processing`. Independence: each endpoint has at most
WEBHOOK_ENDPOINT_MAX_IN_FLIGHT requests of the WEBHOOK_MAX_IN_FLIGHT slots, and each
pair its own backoff, so a slow or dead endpoint, or payout, holds up no other.
At least once: a delivery leaves `pending` only when its attempt is recorded; a crash
before that sends it again, with the same `webhook-id`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from projections.database import NamedLock
from webhooks import metrics
from webhooks.backoff import next_attempt
from webhooks.models import (
    MAX_TEXT,
    RESPONSE_PREFIX_BYTES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.signing import signature_headers, unseal
from webhooks.targets import UnsafeTarget, resolve

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

logger = logging.getLogger(__name__)

USER_AGENT = "payout-ledger-webhooks/1"
LOCK_NAME = "webhook_sender"


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str = ""
    response_prefix: str = ""


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [unseal(endpoint.secret, endpoint.id)]
    if endpoint.previous_secret_active(now):
        assert endpoint.previous_secret is not None  # active: one is kept
        found.append(unseal(endpoint.previous_secret, endpoint.id))
    return found


def new_client() -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(
            settings.WEBHOOK_READ_TIMEOUT,
            connect=settings.WEBHOOK_CONNECT_TIMEOUT,
            pool=settings.WEBHOOK_CONNECT_TIMEOUT,
        ),
        follow_redirects=False,
        # HTTP(S)_PROXY and .netrc of the process are no business of a receiver's.
        trust_env=False,
    )


def _clean(text: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL.
    return text.replace("\x00", "\ufffd")[:limit]


def post(
    client: httpx.Client,
    url: str,
    message_id: str,
    payload: str,
    secrets: Sequence[str],
) -> Outcome:
    """One attempt. The host is resolved and checked now, and the request goes to
    the checked address (so a DNS answer cannot change between check and connect);
    redirects are not followed; at most RESPONSE_PREFIX_BYTES of the answer are read."""
    started = time.monotonic()
    try:
        target = resolve(url)
    except UnsafeTarget as exc:
        return Outcome(False, None, 0, _clean(str(exc), MAX_TEXT))
    headers = {
        **signature_headers(message_id, payload, secrets),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": target.host_header,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    status_code, prefix, error = None, b"", ""
    try:
        with client.stream(
            "POST",
            target.url,
            content=payload.encode(),
            headers=headers,
            extensions=extensions,
        ) as response:
            status_code = response.status_code
            for chunk in response.iter_raw():
                prefix += chunk
                if len(prefix) >= RESPONSE_PREFIX_BYTES:
                    break
            if response.is_redirect:
                location = response.headers.get("location", "")
                error = f"HTTP {status_code}: redirect to {location!r} not followed"
            elif not response.is_success:
                error = f"HTTP {status_code}"
    except httpx.TimeoutException as exc:
        error = f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency = int((time.monotonic() - started) * 1000)
    return Outcome(
        succeeded=not error,
        status_code=status_code,
        latency_ms=latency,
        error=_clean(error, MAX_TEXT),
        response_prefix=_clean(
            prefix[:RESPONSE_PREFIX_BYTES].decode("utf-8", "replace"),
            RESPONSE_PREFIX_BYTES,
        ),
    )


def record(
    delivery: WebhookDelivery,
    outcome: Outcome,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> None:
    """The attempt, and what it means for the delivery and its endpoint, at once."""
    now = now or timezone.now()
    deliveries = WebhookDelivery.objects.filter(pk=delivery.pk)
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            at=now,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            response_prefix=outcome.response_prefix,
        )
        common: dict[str, Any] = {
            "attempts": F("attempts") + 1,
            "last_attempt_at": now,
            "first_attempt_at": Coalesce("first_attempt_at", now),
        }
        if outcome.succeeded:
            deliveries.update(
                status=DeliveryStatus.SUCCEEDED, succeeded_at=now, **common
            )
            endpoints.update(consecutive_failures=0, last_success_at=now)
            return
        endpoints.update(
            consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now
        )
        later = next_attempt(
            now,
            delivery.first_attempt_at or now,
            delivery.attempts + 1,
            window=settings.WEBHOOK_RETRY_WINDOW,
            base=settings.WEBHOOK_RETRY_BASE,
            cap=settings.WEBHOOK_RETRY_MAX_DELAY,
            rng=rng or random.SystemRandom(),
        )
        if later is not None:
            deliveries.update(next_attempt_at=later, **common)
            return
        deliveries.update(status=DeliveryStatus.FAILED, **common)
        reason = (
            f"Delivery {delivery.pk} failed for the whole retry window "
            f"({settings.WEBHOOK_RETRY_WINDOW:g} s); last error: {outcome.error}"
        )
        if endpoints.filter(enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:MAX_TEXT]
        ):
            metrics.ENDPOINTS_DISABLED.inc()
            logger.warning(
                "webhook endpoint %s disabled: %s", delivery.endpoint_id, reason
            )


def due(
    endpoint_id: UUID,
    *,
    busy: set[UUID],
    limit: int,
    now: datetime | None = None,
) -> list[WebhookDelivery]:
    """An endpoint's deliveries that may be sent now: pending, due, the oldest
    unacknowledged of their payout, and of a payout with nothing in flight."""
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        payout_id=OuterRef("payout_id"),
        version__lt=OuterRef("version"),
    ).exclude(status=DeliveryStatus.SUCCEEDED)
    query = (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now or timezone.now(),
        )
        .filter(~Exists(earlier))
        .order_by("next_attempt_at", "position")
        .only("id", "endpoint_id", "payout_id", "version")
    )
    if busy:
        query = query.exclude(payout_id__in=busy)
    return list(query[:limit])


def _acquire(lock: NamedLock, stop: threading.Event) -> bool:
    """Wait for the lock until `stop`: one sender at a time, or the order per payout
    would not hold."""
    while not stop.is_set():
        if lock.try_acquire():
            return True
        stop.wait(1.0)
    return False


class Sender:
    """Requests run on a pool of threads; everything touching the database runs on
    the pumping thread (one connection, and SQLite has one writer anyway)."""

    def __init__(
        self,
        *,
        wake: threading.Event | None = None,
        max_in_flight: int | None = None,
        per_endpoint: int | None = None,
    ) -> None:
        self.wake = wake or threading.Event()
        self.max_in_flight = max_in_flight or settings.WEBHOOK_MAX_IN_FLIGHT
        self.per_endpoint = per_endpoint or settings.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT
        self.pool = ThreadPoolExecutor(self.max_in_flight, "webhook-send")
        self.in_flight: dict[Future[Outcome], WebhookDelivery] = {}
        self._local = threading.local()

    def pump(self) -> int:
        """Record finished sends, then start every due delivery there is room for."""
        self.reap()
        started = 0
        now = timezone.now()
        for endpoint in WebhookEndpoint.objects.filter(enabled=True):
            room = self.max_in_flight - len(self.in_flight)
            if room <= 0:
                break
            busy = {
                d.payout_id
                for d in self.in_flight.values()
                if d.endpoint_id == endpoint.id
            }
            room = min(room, self.per_endpoint - len(busy))
            if room <= 0:
                continue
            ready = due(endpoint.id, busy=busy, limit=room, now=now)
            if not ready:
                continue
            secrets = signing_secrets(endpoint, now)
            for delivery in WebhookDelivery.objects.filter(
                pk__in=[d.pk for d in ready]
            ):
                future = self.pool.submit(
                    self._send, endpoint.url, delivery.pk, delivery.payload, secrets
                )
                self.in_flight[future] = delivery
                future.add_done_callback(lambda _: self.wake.set())
                started += 1
        return started

    def reap(self) -> None:
        for future in [f for f in self.in_flight if f.done()]:
            delivery = self.in_flight[future]
            try:
                outcome = future.result()
            except Exception as exc:  # a bug in post(): recorded like any failure
                logger.exception("webhook send of %s raised", delivery.pk)
                outcome = Outcome(False, None, 0, _clean(repr(exc), MAX_TEXT))
            # Recorded before the pair leaves in_flight: the next version of the
            # payout is due only once this one is acknowledged in the database.
            record(delivery, outcome)
            metrics.observe(outcome, delivery)
            del self.in_flight[future]

    def idle(self) -> bool:
        return not self.in_flight

    def _send(
        self, url: str, message_id: str, payload: str, secrets: list[str]
    ) -> Outcome:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = new_client()
        return post(client, url, message_id, payload, secrets)

    def finish(self) -> None:
        """Wait for the sends in flight and record them (a graceful stop)."""
        self.pool.shutdown(wait=True)
        self.reap()
        self.pool = ThreadPoolExecutor(self.max_in_flight, "webhook-send")

    def run(self, stop: threading.Event, *, poll: float = 0.5) -> None:
        """Until `stop`: hold the lock, pump, sleep until woken (a new delivery, a
        send done) or `poll` passes (a retry coming due). Errors back off, retry."""
        lock = NamedLock(LOCK_NAME)
        backoff = 0.5
        while not stop.is_set():
            try:
                if not _acquire(lock, stop):
                    break
                logger.info("delivering webhooks")
                while not stop.is_set() and lock.held():
                    self.wake.clear()
                    self.pump()
                    self.wake.wait(poll)
                    backoff = 0.5
                self.finish()
            except Exception:
                logger.exception("webhook sender stopped; retrying in %.1fs", backoff)
                # Unrecorded sends are simply sent again (same webhook-id).
                self.pool.shutdown(wait=True)
                self.pool = ThreadPoolExecutor(self.max_in_flight, "webhook-send")
                self.in_flight.clear()
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                try:
                    lock.release()
                except Exception:
                    logger.exception("releasing the webhook sender lock")
                close_old_connections()
