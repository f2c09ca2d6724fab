"""Payouts use cases on POPO persistence: commands, idempotency, queries, races."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from ledger.application import NewPayout, Payouts
from ledger.errors import (
    ConcurrencyExhausted,
    InvalidRequest,
    InvalidTransition,
    PayoutNotFound,
    RequestMismatch,
    VersionMismatch,
)
from ledger.values import CardRecipient, MoneyPolicy
from tests.builders import TEST_ACTOR, WORKER, create_keyed, new_payout
from tests.fakes import POPO_ENV, PayoutsOn, SharedRecorder

if TYPE_CHECKING:
    from collections.abc import Callable

VISA = "4242424242424242"


@pytest.fixture
def recorder() -> SharedRecorder:
    return SharedRecorder()


@pytest.fixture
def first(recorder: SharedRecorder) -> Payouts:
    return PayoutsOn(recorder)


@pytest.fixture
def second(recorder: SharedRecorder) -> Payouts:
    return PayoutsOn(recorder)


def create(app: Payouts, **kwargs: Any) -> uuid.UUID:
    return app.create_payout(new_payout(), actor=TEST_ACTOR, **kwargs).payout.id


def types(app: Payouts, payout_id: uuid.UUID) -> list[str]:
    return [record.type for record in app.history(payout_id)]


# Create


def test_creating_a_payout_makes_it_pending_at_version_one(payouts: Payouts) -> None:
    # when
    outcome = payouts.create_payout(new_payout(), actor=TEST_ACTOR)
    # then
    assert outcome.replayed is False
    assert outcome.payout.status == "pending"
    assert outcome.payout.version == 1
    assert outcome.payout.amount == Decimal("1500.00")
    assert outcome.payout.currency == "EUR"
    assert outcome.payout.allowed_transitions == ["processing", "cancelled"]


def test_a_created_payout_shows_its_card_number_masked(payouts: Payouts) -> None:
    # when
    outcome = payouts.create_payout(new_payout(), actor=TEST_ACTOR)
    # then
    assert outcome.payout.recipient["number"] == "424242******4242"
    assert VISA not in repr(outcome)


def test_a_created_payout_is_stored(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    # when
    loaded = payouts.get_payout(payout_id)
    # then
    assert loaded.status == "pending"
    assert types(payouts, payout_id) == ["Created"]


def test_creating_without_a_key_makes_a_new_payout_each_time(payouts: Payouts) -> None:
    # when
    ids = {create(payouts), create(payouts)}
    # then
    assert len(ids) == 2


def test_every_invalid_field_is_reported_at_once(payouts: Payouts) -> None:
    # given
    request = NewPayout(
        amount="-1",
        currency="EUR",
        recipient={"type": "card", "number": "4242424242424241", "holder": "Ada"},
    )
    # when
    with pytest.raises(InvalidRequest) as refused:
        payouts.create_payout(request, actor=TEST_ACTOR)
    # then
    assert set(refused.value.errors) == {"amount", "recipient_details.number"}


def test_an_unknown_recipient_type_is_refused(payouts: Payouts) -> None:
    # given
    request = NewPayout(amount="10", currency="EUR", recipient={"type": "cash"})
    # when
    with pytest.raises(InvalidRequest) as refused:
        payouts.create_payout(request, actor=TEST_ACTOR)
    # then
    assert list(refused.value.errors) == ["recipient_details.type"]


def test_the_money_policy_of_the_application_applies() -> None:
    # given
    strict = Payouts(
        env=POPO_ENV,
        policy=MoneyPolicy(currencies=frozenset({"USD"})),
    )
    # when
    with pytest.raises(InvalidRequest) as refused:
        strict.create_payout(new_payout(), actor=TEST_ACTOR)
    # then
    assert list(refused.value.errors) == ["currency"]


# Idempotent create


def test_the_same_key_and_request_replays_the_original_payout(
    payouts: Payouts,
) -> None:
    # given
    original = create_keyed(payouts)
    # when
    again = create_keyed(payouts)
    # then
    assert again.replayed is True
    assert again.payout == original.payout
    assert types(payouts, original.payout.id) == ["Created"]


def test_a_replay_answers_as_the_original_even_after_the_payout_moved_on(
    payouts: Payouts,
) -> None:
    # given
    original = create_keyed(payouts)
    payouts.cancel(original.payout.id, reason="changed mind", actor=TEST_ACTOR)
    # when
    again = create_keyed(payouts)
    # then
    assert again.payout.status == "pending"
    assert again.payout.version == 1


def test_the_same_key_with_another_request_is_a_mismatch(payouts: Payouts) -> None:
    # given
    original = create_keyed(payouts, fingerprint="fp-a")
    # when
    with pytest.raises(RequestMismatch) as refused:
        create_keyed(payouts, fingerprint="fp-b", amount="1.00")
    # then
    assert refused.value.payout_id == original.payout.id
    assert payouts.get_payout(original.payout.id).amount == Decimal("1500.00")


def test_the_same_key_from_another_caller_makes_another_payout(
    payouts: Payouts,
) -> None:
    # given
    mine = create(payouts, scope="7", idempotency_key="k1", request_fingerprint="fp")
    # when
    theirs = create(payouts, scope="8", idempotency_key="k1", request_fingerprint="fp")
    # then
    assert theirs != mine
    assert payouts.get_payout(theirs).version == 1


def test_a_create_racing_the_same_key_answers_as_a_replay(
    recorder: SharedRecorder, first: Payouts, second: Payouts
) -> None:
    # given
    recorder.before_next_insert.append(lambda: create_keyed(second))
    # when
    outcome = create_keyed(first)
    # then
    assert outcome.replayed is True
    assert types(first, outcome.payout.id) == ["Created"]


def test_a_create_racing_the_same_key_with_another_request_is_a_mismatch(
    recorder: SharedRecorder, first: Payouts, second: Payouts
) -> None:
    # given
    recorder.before_next_insert.append(lambda: create_keyed(second, fingerprint="fp-a"))
    # when / then
    with pytest.raises(RequestMismatch):
        create_keyed(first, fingerprint="fp-b")


# Queries


def test_an_unknown_payout_is_not_found(payouts: Payouts) -> None:
    # given
    unknown = uuid.uuid4()
    # when / then
    with pytest.raises(PayoutNotFound):
        payouts.get_payout(unknown)
    with pytest.raises(PayoutNotFound):
        payouts.history(unknown)


def test_a_past_version_of_a_payout_can_be_read(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    payouts.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # when
    at_two = payouts.get_payout(payout_id, version=2)
    # then
    assert (at_two.status, at_two.version) == ("processing", 2)
    assert payouts.get_payout(payout_id).status == "completed"


@pytest.mark.parametrize("version", [0, -1, 3])
def test_a_version_that_does_not_exist_is_not_found(
    payouts: Payouts, version: int
) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # when / then
    with pytest.raises(PayoutNotFound):
        payouts.get_payout(payout_id, version=version)


def test_a_payout_read_as_of_an_instant_shows_the_state_then(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    created_at, cancelled_at = (r.occurred_at for r in payouts.history(payout_id))
    # when
    at_creation = payouts.get_payout(payout_id, as_of=created_at)
    at_cancel = payouts.get_payout(payout_id, as_of=cancelled_at)
    # then
    assert (at_creation.status, at_creation.version) == ("pending", 1)
    assert (at_cancel.status, at_cancel.version) == ("cancelled", 2)


def test_a_payout_read_before_it_existed_is_not_found(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    created_at = payouts.history(payout_id)[0].occurred_at
    # when / then
    with pytest.raises(PayoutNotFound):
        payouts.get_payout(payout_id, as_of=created_at.replace(year=2000))


def test_the_history_lists_every_event_in_order_with_its_actor(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    payouts.fail(payout_id, code="card_declined", message="Declined.", actor=WORKER)
    # when
    history = payouts.history(payout_id)
    # then
    assert [(r.version, r.type) for r in history] == [
        (1, "Created"),
        (2, "ProcessingStarted"),
        (3, "Failed"),
    ]
    assert history[0].actor == {"type": "user", "id": "tester"}
    assert history[2].actor == {"type": "worker", "id": "w1:42"}
    assert history[2].data == {
        "failure_reason": {"code": "card_declined", "message": "Declined."}
    }


def test_the_history_never_shows_the_full_card_number(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    # when
    created = payouts.history(payout_id)[0]
    # then
    assert created.data["recipient_details"]["number"] == "424242******4242"
    assert VISA not in repr(created)


def test_the_feed_lists_events_of_all_payouts_in_commit_order(
    payouts: Payouts,
) -> None:
    # given
    a = create(payouts)
    b = create(payouts)
    payouts.cancel(a, reason="", actor=TEST_ACTOR)
    # when
    feed = payouts.feed(after=0, limit=10)
    # then
    assert [(r.payout_id, r.type) for r in feed] == [
        (a, "Created"),
        (b, "Created"),
        (a, "Cancelled"),
    ]
    assert [r.position for r in feed] == sorted(r.position for r in feed)


def test_the_feed_starts_after_a_position_and_stops_at_the_limit(
    payouts: Payouts,
) -> None:
    # given
    ids = [create(payouts) for _ in range(4)]
    first_position = payouts.feed(after=0, limit=1)[0].position
    # when
    page = payouts.feed(after=first_position, limit=2)
    # then
    assert [r.payout_id for r in page] == ids[1:3]


# Commands after create


def test_start_processing_hands_the_full_recipient_to_the_worker(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    # when
    order = payouts.start_processing(payout_id, actor=WORKER)
    # then
    assert order.status == "processing"
    assert isinstance(order.recipient, CardRecipient)
    assert order.recipient.number.reveal() == VISA
    assert (order.amount, order.currency) == (Decimal("1500.00"), "EUR")


def test_starting_a_payout_already_processing_records_nothing(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    # when
    order = payouts.start_processing(payout_id, actor=WORKER)
    # then
    assert order.status == "processing"
    assert types(payouts, payout_id) == ["Created", "ProcessingStarted"]


def test_completing_twice_records_one_completion(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    payouts.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # when
    again = payouts.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # then
    assert again.version == 3
    assert types(payouts, payout_id).count("Completed") == 1


def test_failing_a_completed_payout_is_rejected(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    payouts.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # when / then
    with pytest.raises(InvalidTransition):
        payouts.fail(payout_id, code="x", message="y", actor=WORKER)


def test_cancelling_a_pending_payout_cancels_it(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    # when
    cancelled = payouts.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    # then
    assert (cancelled.status, cancelled.version) == ("cancelled", 2)
    assert cancelled.allowed_transitions == []


def test_cancelling_twice_is_idempotent(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    # when
    again = payouts.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    # then
    assert again.version == 2
    assert types(payouts, payout_id) == ["Created", "Cancelled"]


def test_cancelling_a_processing_payout_is_rejected(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    # when
    with pytest.raises(InvalidTransition) as rejected:
        payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # then
    assert rejected.value.current_status == "processing"


def test_cancelling_an_unknown_payout_is_not_found(payouts: Payouts) -> None:
    with pytest.raises(PayoutNotFound):
        payouts.cancel(uuid.uuid4(), reason="", actor=TEST_ACTOR)


def test_cancelling_at_a_stale_version_is_a_version_mismatch(
    payouts: Payouts,
) -> None:
    # given
    payout_id = create(payouts)
    payouts.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # when
    with pytest.raises(VersionMismatch) as refused:
        payouts.cancel(payout_id, reason="", actor=TEST_ACTOR, expected_version=1)
    # then
    assert (refused.value.expected, refused.value.actual) == (1, 2)


def test_a_version_mismatch_is_checked_before_the_state(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    payouts.start_processing(payout_id, actor=WORKER)
    # when / then
    with pytest.raises(VersionMismatch):
        payouts.cancel(payout_id, reason="", actor=TEST_ACTOR, expected_version=1)


def test_cancelling_at_the_current_version_cancels(payouts: Payouts) -> None:
    # given
    payout_id = create(payouts)
    # when
    cancelled = payouts.cancel(
        payout_id, reason="", actor=TEST_ACTOR, expected_version=1
    )
    # then
    assert cancelled.status == "cancelled"


# Concurrent writers: reload and decide again


@pytest.mark.parametrize(
    "losing_move",
    [
        lambda app, payout_id: app.start_processing(payout_id, actor=WORKER),
        lambda app, payout_id: app.cancel(payout_id, reason="", actor=TEST_ACTOR),
    ],
    ids=["start", "cancel"],
)
def test_a_move_that_loses_the_race_to_a_cancel_answers_cancelled_and_adds_nothing(
    recorder: SharedRecorder,
    first: Payouts,
    second: Payouts,
    losing_move: Callable[[Payouts, uuid.UUID], Any],
) -> None:
    # given
    payout_id = create(first)
    recorder.before_next_insert.append(
        lambda: second.cancel(payout_id, reason="", actor=TEST_ACTOR)
    )
    # when
    answer = losing_move(first, payout_id)
    # then
    assert answer.status == "cancelled"
    assert types(first, payout_id) == ["Created", "Cancelled"]


def test_a_cancel_that_loses_the_race_to_a_start_is_rejected(
    recorder: SharedRecorder, first: Payouts, second: Payouts
) -> None:
    # given
    payout_id = create(first)
    recorder.before_next_insert.append(
        lambda: second.start_processing(payout_id, actor=WORKER)
    )
    # when
    with pytest.raises(InvalidTransition):
        first.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # then
    assert types(first, payout_id) == ["Created", "ProcessingStarted"]


def test_a_cancel_whose_acknowledgement_was_lost_is_recorded_once(
    recorder: SharedRecorder, first: Payouts
) -> None:
    # given
    payout_id = create(first)
    recorder.lose_next_ack = True
    # when
    cancelled = first.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # then
    assert cancelled.status == "cancelled"
    assert types(first, payout_id) == ["Created", "Cancelled"]


def test_a_create_whose_acknowledgement_was_lost_answers_with_the_stored_payout(
    recorder: SharedRecorder, first: Payouts
) -> None:
    # given
    recorder.lose_next_ack = True
    # when
    outcome = first.create_payout(new_payout(), actor=TEST_ACTOR)
    # then: created once, and said so
    assert not outcome.replayed
    assert outcome.payout.version == 1
    assert types(first, outcome.payout.id) == ["Created"]


def test_a_writer_that_always_loses_gives_up_with_a_named_error(
    recorder: SharedRecorder, first: Payouts
) -> None:
    # given
    payout_id = create(first)
    inserts = recorder.inserts
    recorder.refuse_inserts = True
    # when
    with pytest.raises(ConcurrencyExhausted):
        first.cancel(payout_id, reason="", actor=TEST_ACTOR)
    # then
    assert 1 < recorder.inserts - inserts <= 10


def test_concurrent_starts_and_cancels_leave_one_valid_history(
    first: Payouts, second: Payouts
) -> None:
    # given
    payout_ids = [create(first) for _ in range(20)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start_all() -> None:
        barrier.wait()
        for payout_id in payout_ids:
            first.start_processing(payout_id, actor=WORKER)

    def cancel_all() -> None:
        barrier.wait()
        for payout_id in payout_ids:
            try:
                second.cancel(payout_id, reason="", actor=TEST_ACTOR)
            except InvalidTransition:
                pass
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    threads = [threading.Thread(target=start_all), threading.Thread(target=cancel_all)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # then
    assert errors == []
    for payout_id in payout_ids:
        history = first.history(payout_id)
        assert [r.version for r in history] == [1, 2]
        assert history[1].type in ("ProcessingStarted", "Cancelled")
