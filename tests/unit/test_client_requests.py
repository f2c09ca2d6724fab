"""Payouts use cases as a client drives them through the API: asking for a status
(PATCH) and reading a version at an instant (GET ?version=&as_of=)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from ledger.errors import InvalidTransition, PayoutNotFound, VersionMismatch
from tests.builders import TEST_ACTOR, WORKER, create

if TYPE_CHECKING:
    from ledger.application import Payouts


def history_types(payouts: Payouts, payout_id: uuid.UUID) -> list[str]:
    return [record.type for record in payouts.history(payout_id)]


# Asking for a status


def test_asking_for_cancelled_cancels_with_the_reason_given(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    # when
    cancelled = payouts.request_status(
        payout_id, "cancelled", reason="asked", actor=TEST_ACTOR
    )
    # then
    assert (cancelled.status, cancelled.version) == ("cancelled", 2)
    assert payouts.history(payout_id)[-1].data == {"reason": "asked"}


@pytest.mark.parametrize(
    ("current", "asked", "allowed"),
    [
        ("pending", "processing", ["processing", "cancelled"]),
        ("pending", "completed", ["processing", "cancelled"]),
        ("pending", "failed", ["processing", "cancelled"]),
        ("pending", "pending", ["processing", "cancelled"]),
        ("cancelled", "pending", []),
    ],
)
def test_asking_for_any_other_status_is_rejected_and_records_nothing(
    payouts: Payouts, current: str, asked: str, allowed: list[str]
) -> None:
    # given
    payout_id = create(payouts)
    if current == "cancelled":
        payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    recorded = history_types(payouts, payout_id)
    # when
    with pytest.raises(InvalidTransition) as rejected:
        payouts.request_status(payout_id, asked, reason="", actor=TEST_ACTOR)
    # then
    assert rejected.value.current_status == current
    assert rejected.value.target_status == asked
    assert rejected.value.allowed_transitions == allowed
    assert history_types(payouts, payout_id) == recorded


def test_a_stale_version_is_reported_before_a_forbidden_status(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    # when / then
    with pytest.raises(VersionMismatch):
        payouts.request_status(
            payout_id, "completed", reason="", actor=TEST_ACTOR, expected_version=5
        )


@pytest.mark.parametrize("status", ["cancelled", "completed"])
def test_asking_an_unknown_payout_for_a_status_is_not_found(
    payouts: Payouts, status: str
) -> None:
    with pytest.raises(PayoutNotFound):
        payouts.request_status(uuid.uuid4(), status, reason="", actor=TEST_ACTOR)


@pytest.mark.parametrize("status", ["processing", "completed", "failed"])
def test_cancelling_at_a_stale_version_is_a_mismatch_whatever_the_state(
    payouts: Payouts, status: str
) -> None:
    # given: the payout moved on from version 1
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    if status == "completed":
        payouts.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    if status == "failed":
        payouts.fail(payout_id, code="card_declined", message="No.", actor=WORKER)
    # when / then
    with pytest.raises(VersionMismatch):
        payouts.request_status(
            payout_id, "cancelled", reason="", actor=TEST_ACTOR, expected_version=1
        )


# Reading a version at an instant


def test_a_version_that_existed_by_the_instant_is_read_at_that_version(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    cancelled_at = payouts.history(payout_id)[-1].occurred_at
    # when
    read = payouts.get_payout(payout_id, version=1, as_of=cancelled_at)
    # then
    assert (read.status, read.version) == ("pending", 1)


def test_a_version_that_did_not_exist_yet_at_the_instant_is_not_found(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    created_at = payouts.history(payout_id)[0].occurred_at
    # when / then
    with pytest.raises(PayoutNotFound):
        payouts.get_payout(payout_id, version=2, as_of=created_at)


def test_an_instant_between_two_events_reads_the_earlier_one(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    created_at, cancelled_at = (r.occurred_at for r in payouts.history(payout_id))
    # when
    read = payouts.get_payout(
        payout_id, as_of=created_at + (cancelled_at - created_at) / 2
    )
    # then
    assert (read.status, read.version) == ("pending", 1)
