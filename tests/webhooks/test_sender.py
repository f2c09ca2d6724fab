"""The sender against real HTTP servers on loopback: signatures, order per payout,
failures, timeouts, redirects, the retry window and independence of endpoints."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone

from projections.runner import drain
from tests.builders import make_endpoint, paid_payout
from tools.stack import free_port
from webhooks import services
from webhooks.follower import WebhookFollower
from webhooks.models import (
    RESPONSE_PREFIX_BYTES,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.sender import Sender, due

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ledger.application import Payouts

pytestmark = pytest.mark.django_db(transaction=True)


def run_sender(sender: Sender, until: Callable[[], bool], timeout: float = 30) -> float:
    """Pump until `until()`; then let the sends in flight finish. The seconds it
    took to get there."""
    started = time.monotonic()
    while not until():
        assert time.monotonic() - started < timeout, "the sender did not get there"
        sender.pump()
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    while not sender.idle():
        sender.reap()
        time.sleep(0.02)
    return elapsed


def all_succeeded() -> bool:
    return not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[Any], None]], str]]:
    """An HTTP server on loopback answering with `respond(handler)`."""
    servers: list[ThreadingHTTPServer] = []

    def start(respond: Callable[[Any], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                respond(self)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/hooks"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_every_event_arrives_verified_and_in_order_while_the_receiver_fails_and_hangs(
    ledger: Payouts, allow_loopback: Any, receiver_factory: Any
) -> None:
    # given: a receiver failing its first three requests, holding the fifth 2 s
    receiver = receiver_factory(
        "--fail-first", "3", "--hang-request", "5", "--hang-seconds", "2"
    )
    endpoint, secret = make_endpoint(receiver.url)
    receiver.use_secret(secret)
    payout_ids = [paid_payout(ledger) for _ in range(6)]
    drain(ledger, WebhookFollower(ledger))
    # when
    run_sender(Sender(), all_succeeded)
    # then
    state = receiver.state()
    assert state["counters"]["bad_signatures"] == 0
    assert state["counters"]["out_of_order"] == []
    got = {(a["payout_id"], a["version"]) for a in state["accepted"]}
    assert got == {(str(p), v) for p in payout_ids for v in (1, 2, 3)}
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
    assert attempts.filter(status_code=500).count() == 3
    assert attempts.filter(error__startswith="timeout").count() == 1
    assert state["counters"]["duplicates"] >= 1  # the held one, processed, came again


def test_a_later_version_waits_until_the_earlier_one_is_acknowledged(
    ledger: Payouts, allow_loopback: Any
) -> None:
    # given: a payout's created delivery failed and is due again only later
    endpoint, _ = make_endpoint("http://127.0.0.1:9/hooks")
    first, second = paid_payout(ledger), paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    WebhookDelivery.objects.filter(payout_id=first, version=1).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    # when
    ready = due(endpoint.id, busy=set(), limit=100)
    # then: nothing of the first payout, and only the oldest of the second
    assert [(d.payout_id, d.version) for d in ready] == [(second, 1)]
    # and a payout with a send in flight has nothing else due
    assert due(endpoint.id, busy={second}, limit=100) == []


def test_a_slow_endpoint_does_not_hold_up_another(
    ledger: Payouts, allow_loopback: Any, server: Any
) -> None:
    # given: one endpoint that answers only once the test releases it, one at once
    released = threading.Event()

    def slow(handler: Any) -> None:
        released.wait(10)
        handler.send_response(200)
        handler.end_headers()

    def fast(handler: Any) -> None:
        handler.send_response(204)
        handler.end_headers()

    allow_loopback.WEBHOOK_READ_TIMEOUT = 5.0
    slow_endpoint, _ = make_endpoint(server(slow))
    fast_endpoint, _ = make_endpoint(server(fast))
    for _ in range(8):
        paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    sender = Sender(max_in_flight=6, per_endpoint=3)
    slow_done_when_fast_was: list[int] = []

    def fast_all_done() -> bool:
        if fast_endpoint.deliveries.exclude(status="succeeded").exists():
            return False
        slow_done_when_fast_was.append(
            slow_endpoint.deliveries.filter(status="succeeded").count()
        )
        released.set()
        return True

    # when
    try:
        run_sender(sender, fast_all_done)
    finally:
        released.set()
    # then: every fast delivery was done while the slow endpoint still held its sends
    assert slow_done_when_fast_was == [0]


def test_redirects_are_not_followed_and_only_a_prefix_of_the_answer_is_kept(
    ledger: Payouts, allow_loopback: Any, server: Any
) -> None:
    # given
    def redirect(handler: Any) -> None:
        body = b"x" * 100_000
        handler.send_response(302)
        handler.send_header("location", "http://127.0.0.1:1/elsewhere")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    make_endpoint(server(redirect))
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    # when
    run_sender(Sender(), lambda: WebhookAttempt.objects.exists())
    # then
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 302 and not attempt.succeeded
    assert "not followed" in attempt.error
    assert len(attempt.response_prefix) == RESPONSE_PREFIX_BYTES


def test_an_endpoint_failing_for_the_whole_window_is_disabled_and_resumes_when_enabled(
    ledger: Payouts, allow_loopback: Any, server: Any
) -> None:
    # given: a receiver answering 503 until told otherwise, and a 1 s window
    answer = {"status": 503}

    def flaky(handler: Any) -> None:
        handler.send_response(answer["status"])
        handler.end_headers()

    allow_loopback.WEBHOOK_RETRY_WINDOW = 1.0
    endpoint, _ = make_endpoint(server(flaky))
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    sender = Sender()
    # when
    run_sender(sender, lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled)
    # then
    endpoint.refresh_from_db()
    assert "retry window" in endpoint.disabled_reason
    assert endpoint.consecutive_failures >= 2
    failed = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    assert failed.version == 1 and failed.attempts >= 2
    # when the receiver recovers and an operator enables the endpoint again
    answer["status"] = 200
    services.endpoint_set_enabled(endpoint, True)
    run_sender(sender, all_succeeded)
    # then every delivery went out, in order
    times = list(
        WebhookDelivery.objects.order_by("version").values_list(
            "succeeded_at", flat=True
        )
    )
    assert times == sorted(times) and len(times) == 3


def test_a_target_refused_at_send_time_is_a_failed_attempt(
    ledger: Payouts, allow_loopback: Any
) -> None:
    # given: registered while loopback was allowed, then no longer
    make_endpoint("http://127.0.0.1:9/hooks")
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    allow_loopback.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # when
    run_sender(Sender(), lambda: WebhookAttempt.objects.exists())
    # then
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "Refused" in attempt.error


def test_during_a_rotation_deliveries_carry_both_signatures(
    ledger: Payouts, allow_loopback: Any, receiver_factory: Any
) -> None:
    # given: the receiver still holds the old secret
    receiver = receiver_factory()
    endpoint, old = make_endpoint(receiver.url)
    receiver.use_secret(old)
    services.endpoint_rotate_secret(endpoint, overlap_seconds=60)
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    # when
    run_sender(Sender(), all_succeeded)
    # then
    assert receiver.state()["counters"]["bad_signatures"] == 0
    # and once the overlap is over the old secret no longer verifies
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now()
    )
    services.delivery_resend(WebhookDelivery.objects.get(version=1))
    run_sender(Sender(), lambda: receiver.state()["counters"]["bad_signatures"] > 0)
