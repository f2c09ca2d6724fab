"""One gateway attempt at a time per payout (the lease), what stays in doubt, and the
payouts parked after failures that are not the provider's."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from projections.models import PayoutAttempt
from projections.selectors import attempt_counts
from tests.builders import create
from workers import attempts, tasks
from workers.gateway.base import SubmitResult, TransientGatewayError
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ledger.application import PaymentOrder, Payouts
    from tests.support import Deliver


class HeldGateway(FakeGateway):
    """Holds each charge request until released, and counts calls in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def pay(self, order: PaymentOrder) -> SubmitResult:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.entered.set()
        self.release.wait(10)
        with self.lock:
            self.in_flight -= 1
        return super().pay(order)


class TimeoutGateway(FakeGateway):
    """Every call times out: the outcome is never known."""

    def pay(self, order: PaymentOrder) -> SubmitResult:
        self.calls.append(order.payout_id)
        raise TransientGatewayError("ReadTimeout calling the gateway")

    def status(self, payout_id: UUID) -> SubmitResult | None:
        raise TransientGatewayError("ReadTimeout calling the gateway")

    def void(self, payout_id: UUID) -> SubmitResult | None:
        raise TransientGatewayError("ReadTimeout calling the gateway")


class BrokenGateway(FakeGateway):
    """Fails in a way that is not the provider's: our bug, or data it cannot take."""

    def pay(self, order: PaymentOrder) -> SubmitResult:
        self.calls.append(order.payout_id)
        raise ValueError("cannot encode the destination")


@pytest.mark.django_db(transaction=True)
def test_a_second_delivery_while_one_calls_the_gateway_makes_no_call(
    ledger: Payouts, deliver: Deliver
) -> None:
    # given: a delivery whose gateway call is in flight
    gateway = HeldGateway()
    payout_id = create(ledger)
    first: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: first.update(result=deliver(payout_id, gateway).result)
    )
    thread.start()
    assert gateway.entered.wait(10)
    # when: a redelivery (or a sweep's copy) of the same payout runs meanwhile
    second = deliver(payout_id, gateway).result
    gateway.release.set()
    thread.join(10)
    # then: it ended without calling the gateway; one call, one charge
    assert second == "processing"
    assert first["result"] == "completed"
    assert gateway.calls == [payout_id]
    assert gateway.most_in_flight == 1
    assert not PayoutAttempt.objects.get(payout_id=payout_id).lease_until


@pytest.mark.django_db(transaction=True)
def test_a_payout_whose_every_call_timed_out_is_in_doubt_until_settled(
    ledger: Payouts, deliver: Deliver, project: Callable[[], int]
) -> None:
    # given: retries exhausted, and not even the void got an answer
    payout_id = create(ledger)
    deliver(payout_id, TimeoutGateway())
    # then: in flight, and in doubt
    assert ledger.get_payout(payout_id).status == "processing"
    project()
    assert attempt_counts()["in_doubt"] == 1
    row = PayoutAttempt.objects.get(payout_id=payout_id)
    assert row.in_doubt_since is not None
    # when: the provider answers again, with the charge it had made
    gateway = FakeGateway()
    gateway.charges[payout_id] = SubmitResult(accepted=True, reference="ch_1")
    assert deliver(payout_id, gateway).result == "completed"
    # then
    assert PayoutAttempt.objects.get(payout_id=payout_id).in_doubt_since is None
    project()
    assert attempt_counts()["in_doubt"] == 0
    assert gateway.calls == []  # settled from the record, never paid again


@pytest.mark.django_db(transaction=True)
def test_a_payout_failing_for_a_reason_not_the_providers_is_parked_and_not_swept(
    ledger: Payouts,
    deliver: Deliver,
    project: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a payout that fails the same way each time it is tried
    gateway = BrokenGateway()
    payout_id = create(ledger)
    # when
    for _ in range(attempts.POISON_AFTER):
        deliver(payout_id, gateway)
    # then: parked for an operator, with the reason
    row = PayoutAttempt.objects.get(payout_id=payout_id)
    assert row.parked_at is not None
    assert "cannot encode the destination" in row.last_failure
    assert attempt_counts()["parked"] == 1
    # and the sweeper leaves it alone
    sent: list[str] = []
    monkeypatch.setattr(
        tasks.process_payout, "apply_async", lambda args, **_: sent.append(args[0])
    )
    project()
    later = timezone.now() + timedelta(seconds=settings.STUCK_PAYOUT_AFTER + 5)
    monkeypatch.setattr(tasks.timezone, "now", lambda: later)
    cache.clear()
    assert tasks.sweep_stuck_payouts() == 0
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_skips_a_payout_whose_lease_is_live(
    ledger: Payouts, project: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an overdue payout that an attempt is working on right now
    payout_id = create(ledger)
    project()
    sent: list[str] = []
    monkeypatch.setattr(
        tasks.process_payout, "apply_async", lambda args, **_: sent.append(args[0])
    )
    cache.clear()
    PayoutAttempt.objects.create(
        payout_id=payout_id,
        lease_holder="w1",
        lease_until=timezone.now() + timedelta(seconds=settings.STUCK_PAYOUT_AFTER * 3),
    )
    later = timezone.now() + timedelta(seconds=settings.STUCK_PAYOUT_AFTER + 5)
    monkeypatch.setattr(tasks.timezone, "now", lambda: later)
    # when / then
    assert tasks.sweep_stuck_payouts() == 0
    # and once the lease has expired, it is swept
    PayoutAttempt.objects.filter(payout_id=payout_id).update(lease_until=None)
    assert tasks.sweep_stuck_payouts() == 1
    assert sent == [str(payout_id)]
