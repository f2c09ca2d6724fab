"""PayoutDispatcher: one process_payout message per Payout.Created, never lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from kombu.exceptions import OperationalError

from projections.runner import catch_up
from tests.builders import TEST_ACTOR, WORKER, create
from tests.fakes import TASK, broker_at, emptied_queue_at, queue_length, take_messages
from tests.support import dispatch, dispatcher_position
from tools.stack import free_port
from workers.dispatcher import PayoutDispatcher

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ledger.application import Payouts


@pytest.fixture
def real_broker() -> Iterator[None]:
    with emptied_queue_at(
        settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS
    ):
        yield


def test_each_created_payout_is_enqueued_once(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    ids = [create(ledger) for _ in range(3)]
    # when
    dispatched = dispatch(ledger)
    # then
    assert dispatched == 3
    assert take_messages() == [(TASK, [str(payout_id)]) for payout_id in ids]


def test_a_second_pass_enqueues_nothing_already_enqueued(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    first = create(ledger)
    dispatch(ledger)
    take_messages()
    second = create(ledger)
    # when
    dispatch(ledger)
    # then
    assert take_messages() == [(TASK, [str(second)])]
    assert first != second


def test_events_after_created_enqueue_nothing(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    processed, cancelled = create(ledger), create(ledger)
    dispatch(ledger)
    take_messages()
    ledger.start_processing(processed, actor=WORKER)
    ledger.complete(processed, gateway_reference="ch_1", actor=WORKER)
    ledger.cancel(cancelled, reason="asked", actor=TEST_ACTOR)
    # when
    dispatched = dispatch(ledger)
    # then
    assert dispatched == 0
    assert take_messages() == []


def test_the_position_advances_past_the_enqueued_events(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    create(ledger)
    create(ledger)
    # when
    dispatch(ledger)
    # then
    assert dispatcher_position() == ledger.recorder.max_notification_id()


def test_an_unreachable_broker_fails_the_batch_and_keeps_the_position(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    create(ledger)
    # when
    with (
        broker_at(f"redis://127.0.0.1:{free_port()}/0"),
        pytest.raises(OperationalError),
    ):
        catch_up(ledger, PayoutDispatcher())
    # then
    assert dispatcher_position() == 0


def test_a_payout_held_back_by_a_broker_outage_is_enqueued_when_it_is_back(
    ledger: Payouts, memory_broker: None
) -> None:
    # given
    payout_id = create(ledger)
    with (
        broker_at(f"redis://127.0.0.1:{free_port()}/0"),
        pytest.raises(OperationalError),
    ):
        catch_up(ledger, PayoutDispatcher())
    # when
    dispatch(ledger)
    # then
    assert take_messages() == [(TASK, [str(payout_id)])]


@pytest.mark.redis
def test_each_created_payout_lands_once_in_the_redis_queue(
    ledger: Payouts, real_broker: None
) -> None:
    # given
    ids = [create(ledger) for _ in range(3)]
    # when
    dispatch(ledger)
    dispatch(ledger)
    # then
    assert queue_length() == len(ids)
    assert sorted(args[0] for _, args in take_messages()) == sorted(map(str, ids))
