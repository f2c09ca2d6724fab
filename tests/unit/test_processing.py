"""workers.processing with FakeGateway: what a worker does with one payout."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.builders import TEST_ACTOR, WORKER, new_payout
from workers import processing
from workers.gateway.base import (
    PermanentGatewayError,
    SubmitResult,
    TransientGatewayError,
)
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts

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


def test_a_transient_gateway_error_propagates_and_the_payout_stays_processing(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(TransientGatewayError("read timeout"))
    # when
    with pytest.raises(TransientGatewayError):
        processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert payouts.get_payout(payout_id).status == "processing"
    assert gateway.accepted == []


def test_a_retry_after_a_transient_error_completes_with_one_charge(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(TransientGatewayError("read timeout"))
    with pytest.raises(TransientGatewayError):
        processing.process(payouts, gateway, payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.calls == [payout_id, payout_id]
    assert gateway.accepted == [payout_id]
    assert types(payouts, payout_id).count("ProcessingStarted") == 1


def test_a_permanent_gateway_error_propagates_and_the_payout_stays_processing(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(PermanentGatewayError("HTTP 400"))
    # when
    with pytest.raises(PermanentGatewayError):
        processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert payouts.get_payout(payout_id).status == "processing"


def test_a_duplicate_delivery_charges_once_and_completes_once(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    processing.process(payouts, gateway, payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.calls == [payout_id]
    assert types(payouts, payout_id).count("Completed") == 1


def test_a_duplicate_delivery_of_a_failed_payout_changes_nothing(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(DECLINED)
    processing.process(payouts, gateway, payout_id, actor=WORKER)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "failed"
    assert gateway.calls == [payout_id]
    assert types(payouts, payout_id) == ["Created", "ProcessingStarted", "Failed"]


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


def test_a_worker_lost_after_the_charge_is_settled_by_that_same_charge(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given: a worker died after the gateway charged, before recording Completed
    order = payouts.start_processing(payout_id, actor=WORKER)
    first = gateway.pay(order)
    # when
    status = processing.process(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert gateway.accepted == [payout_id]
    assert payouts.history(payout_id)[-1].data == {"gateway_reference": first.reference}


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


def test_giving_up_completes_a_payout_the_gateway_did_charge(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given: the charge went through but its answer was lost every time
    order = payouts.start_processing(payout_id, actor=WORKER)
    charge = gateway.pay(order)
    # when
    status = processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # then
    assert status == "completed"
    assert payouts.history(payout_id)[-1].data == {
        "gateway_reference": charge.reference
    }


def test_giving_up_fails_a_payout_the_gateway_never_charged(
    payouts: Payouts, gateway: FakeGateway, payout_id: UUID
) -> None:
    # given
    gateway.script(TransientGatewayError("HTTP 503"))
    with pytest.raises(TransientGatewayError):
        processing.process(payouts, gateway, payout_id, actor=WORKER)
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
