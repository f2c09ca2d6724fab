"""workers.processing with FakeGateway: what a worker does with one payout."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.builders import TEST_ACTOR, WORKER, new_payout
from workers import processing
from workers.gateway.base import (
    GatewayError,
    PermanentGatewayError,
    SubmitResult,
    TransientGatewayError,
)
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ledger.application import Payouts

    Step = Callable[..., str]

DECLINED = SubmitResult(
    accepted=False,
    decline_code="card_declined",
    decline_message="The card was declined.",
)


class UnreachableGateway(FakeGateway):
    """A provider that cannot even be asked what it holds."""

    def status(self, payout_id: UUID) -> SubmitResult | None:
        raise TransientGatewayError("connection refused")


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def payout_id(payouts: Payouts) -> UUID:
    return payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id


def types(payouts: Payouts, payout_id: UUID) -> list[str]:
    return [record.type for record in payouts.history(payout_id)]


def attempt_meeting(
    error: GatewayError, payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    """An attempt whose gateway call raises `error`, which the worker lets through."""
    gateway.script(error)
    with pytest.raises(type(error)):
        processing.process(payouts, gateway, payout_id, actor=WORKER)


def test_an_accepted_payment_completes_the_payout(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.accepted == [payout_id]
    assert types(payouts, payout_id) == ["Created", "ProcessingStarted", "Completed"]
    assert payouts.history(payout_id)[-1].data == {
        "gateway_reference": gateway.charges[payout_id].reference
    }


def test_the_worker_is_recorded_as_the_actor(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # when
    processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    actors = [record.actor for record in payouts.history(payout_id)[1:]]
    assert actors == [{"type": "worker", "id": "w1:42"}] * 2


def test_a_declined_payment_fails_the_payout_with_the_decline_code(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(DECLINED)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    payout = payouts.get_payout(payout_id)
    assert status == "failed"
    assert (payout.failure_code, payout.failure_message) == (
        "card_declined",
        "The card was declined.",
    )
    assert gateway.accepted == []


@pytest.mark.parametrize(
    "error", [TransientGatewayError("read timeout"), PermanentGatewayError("HTTP 400")]
)
def test_a_gateway_error_propagates_and_the_payout_stays_processing(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID, error: GatewayError
) -> None:
    # when
    attempt_meeting(error, payouts, gateway, payout_id)
    # then
    assert payouts.get_payout(payout_id).status == "processing"
    assert gateway.accepted == []


def test_a_retry_after_a_transient_error_completes_with_one_charge(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    attempt_meeting(TransientGatewayError("read timeout"), payouts, gateway, payout_id)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.calls == [payout_id, payout_id]
    assert gateway.accepted == [payout_id]
    assert types(payouts, payout_id).count("ProcessingStarted") == 1


@pytest.mark.parametrize(
    ("answers", "final"),
    [((), "Completed"), ((DECLINED,), "Failed")],
)
def test_a_duplicate_delivery_charges_once_and_records_nothing_more(
    payouts: Payouts,
    gateway: FakeGateway,
    payout_id: UUID,
    answers: tuple[SubmitResult, ...],
    final: str,
) -> None:
    # given
    gateway.script(*answers)
    processing.process(payouts, gateway, payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == final.lower()
    assert gateway.calls == [payout_id]
    assert types(payouts, payout_id) == ["Created", "ProcessingStarted", final]


def test_a_payout_left_processing_is_carried_on_with_the_same_key(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given: a worker died after ProcessingStarted, before the gateway call
    payouts.start_processing(payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.calls == [payout_id]
    assert types(payouts, payout_id) == ["Created", "ProcessingStarted", "Completed"]


@pytest.mark.parametrize("step", [processing.process, processing.give_up])
def test_a_charge_a_lost_attempt_made_settles_the_payout(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID, step: Step
) -> None:
    # given: a worker died after the gateway charged, before recording Completed;
    # then the task is redelivered (process), or its retries ran out (give_up)
    order = payouts.start_processing(payout_id, actor=WORKER)
    charge = gateway.pay(order)
    # when
    status = step(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.accepted == [payout_id]
    assert payouts.history(payout_id)[-1].data == {
        "gateway_reference": charge.reference
    }


def test_a_cancelled_payout_is_never_sent_to_the_gateway(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    payouts.cancel(payout_id, reason="customer asked", actor=TEST_ACTOR)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "cancelled"
    assert gateway.calls == []
    assert types(payouts, payout_id) == ["Created", "Cancelled"]


# give_up: after the last retry


def test_giving_up_fails_a_payout_the_gateway_never_charged(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    attempt_meeting(TransientGatewayError("HTTP 503"), payouts, gateway, payout_id)
    # when
    status = processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # then
    payout = payouts.get_payout(payout_id)
    assert status == "failed"
    assert payout.status == "failed"
    assert payout.failure_code == "gateway_unavailable"
    assert gateway.accepted == []


def test_giving_up_records_a_decline_the_gateway_holds(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    order = payouts.start_processing(payout_id, actor=WORKER)
    gateway.script(DECLINED)
    gateway.pay(order)
    # when
    status = processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "failed"
    assert payouts.get_payout(payout_id).failure_code == "card_declined"


def test_giving_up_leaves_the_payout_processing_when_the_gateway_cannot_answer(
    payouts: Payouts, payout_id: UUID
) -> None:
    # given
    gateway = UnreachableGateway()
    payouts.start_processing(payout_id, actor=WORKER)
    # when
    with pytest.raises(TransientGatewayError):
        processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert payouts.get_payout(payout_id).status == "processing"


def test_a_late_redelivery_after_giving_up_changes_nothing(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    payouts.start_processing(payout_id, actor=WORKER)
    processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "failed"
    assert gateway.calls == []
