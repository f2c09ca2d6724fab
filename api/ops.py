"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from kombu import Connection
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import REGISTRY, GaugeMetricFamily

from api.exceptions import PROBLEM_CONTENT_TYPE, problem
from ledger.apps import get_payouts
from ledger.values import PayoutStatus
from projections.projectors import PayoutViewProjection
from projections.selectors import (
    attempt_counts,
    counts_by_status,
    follower_lag_seconds,
)
from webhooks.collectors import WebhookCollector

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.http import HttpRequest

logger = logging.getLogger(__name__)


def projection_lag_seconds() -> float:
    return follower_lag_seconds(PayoutViewProjection.name)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check(probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:
        # The message may name a host, a user or a path: logged, never answered.
        logger.warning("readiness check failed: %s", exc)
        return {"ok": False, "error": type(exc).__name__}
    result = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    if isinstance(detail, dict):
        result.update(detail)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    get_payouts().recorder.max_notification_id()


def _broker() -> None:
    with Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=2,
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _projection() -> dict[str, Any]:
    lag = projection_lag_seconds()
    if lag > settings.PROJECTION_LAG_LIMIT:
        raise RuntimeError(
            f"projection is {lag:.1f}s behind (limit {settings.PROJECTION_LAG_LIMIT}s)"
        )
    return {"lag_seconds": round(lag, 3)}


def _payouts() -> dict[str, Any]:
    # Reported, never failing readiness: a payout in doubt waits for the provider's
    # answer, a parked one for an operator; neither stops the service from serving.
    counts = attempt_counts()
    return {"in_doubt": counts["in_doubt"], "parked": counts["parked"]}


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check(_database),
        "broker": _check(_broker),
        "projection": _check(_projection),
        "payouts": _check(_payouts),
    }
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


class LedgerCollector:
    """Figures read at scrape time from the projection, so every process agrees."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "payouts", "Payouts by status (projection).", labels=["status"]
        )
        counts = counts_by_status()
        # Every status, a zero included: a series that appears only once it is
        # non-zero breaks rate() and alerts on absence.
        for status in PayoutStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        yield GaugeMetricFamily(
            "payouts_created",
            "Payouts created (all statuses).",
            value=sum(counts.values()),
        )
        attempts = attempt_counts()
        yield GaugeMetricFamily(
            "payouts_in_doubt",
            "Payouts in processing whose last gateway call had no definitive answer.",
            value=attempts["in_doubt"],
        )
        yield GaugeMetricFamily(
            "payouts_parked",
            "Payouts parked for an operator after failures not the provider's.",
            value=attempts["parked"],
        )
        yield GaugeMetricFamily(
            "projection_lag_seconds",
            "Age of the oldest event not yet projected.",
            value=projection_lag_seconds(),
        )


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _metrics_unauthorized() -> JsonResponse:
    response = JsonResponse(
        problem(
            401,
            "not_authenticated",
            "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`.",
        ),
        status=401,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    # Compared in constant time, as bytes: compare_digest refuses non-ASCII str.
    if expected and not hmac.compare_digest(
        _bearer_token(request).encode(), expected.encode()
    ):
        return _metrics_unauthorized()
    registry = CollectorRegistry()
    if settings.METRICS_MULTIPROCESS:
        multiprocess.MultiProcessCollector(
            registry, path=settings.PROMETHEUS_MULTIPROC_DIR
        )
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    ledger = CollectorRegistry()
    ledger.register(LedgerCollector())
    ledger.register(WebhookCollector())
    return HttpResponse(
        output + generate_latest(ledger), content_type=CONTENT_TYPE_LATEST
    )
