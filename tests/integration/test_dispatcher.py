"""PayoutDispatcher: one process_payout message per Payout.Created, never lost."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from kombu import pools
from kombu.exceptions import OperationalError

from ledger.payout import Actor
from projections.models import Position
from projections.runner import catch_up, drain
from tests.conftest import TEST_ACTOR, new_payout
from workers.celery import app
from workers.dispatcher import PayoutDispatcher

if TYPE_CHECKING:
    from collections.abc import Iterator
    from uuid import UUID

    from ledger.application import Payouts

WORKER = Actor("worker", "w1:42", "task-9")
QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
TASK = "workers.tasks.process_payout"


@contextmanager
def broker_at(url: str, options: dict[str, Any] | None = None) -> Iterator[None]:
    """Point the Celery app at another broker for a while, then restore it."""
    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def switch(to_url: str, to_options: dict[str, Any]) -> None:
        pools.reset()
        app.conf.broker_url, app.conf.broker_transport_options = to_url, to_options
        # The connection and producer pools are bound to the broker they were made for.
        app._pool = None
        app.amqp._producer_pool = None

    switch(url, options or {})
    try:
        yield
    finally:
        switch(*saved)


def take_messages() -> list[tuple[str, list[Any]]]:
    """Every message waiting in the queue, as (task name, args); the queue is emptied."""
    taken = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
            taken.append((message.headers["task"], message.decode()[0]))
    return taken


def queue_length() -> int:
    with app.connection_for_read() as connection:
        declared = connection.default_channel.queue_declare(QUEUE, passive=True)
        return int(declared.message_count)


@pytest.fixture
def broker() -> Iterator[None]:
    """An in-process broker: the developer's queue never sees a test message."""
    with broker_at("memory://"):
        take_messages()
        yield
        take_messages()


@pytest.fixture
def real_broker() -> Iterator[None]:
    with broker_at(
        settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS
    ):
        take_messages()
        yield
        take_messages()


def create(ledger: Payouts) -> UUID:
    return ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id


def dispatch(ledger: Payouts) -> int:
    return drain(ledger, PayoutDispatcher())


def position() -> int:
    found = Position.objects.filter(name=PayoutDispatcher.name)
    return found.values_list("position", flat=True).first() or 0


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_created_payout_is_enqueued_once(ledger: Payouts, broker: None) -> None:
    # given
    ids = [create(ledger) for _ in range(3)]
    # when
    dispatched = dispatch(ledger)
    # then
    assert dispatched == 3
    assert take_messages() == [(TASK, [str(payout_id)]) for payout_id in ids]


def test_a_second_pass_enqueues_nothing_already_enqueued(
    ledger: Payouts, broker: None
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


def test_events_after_created_enqueue_nothing(ledger: Payouts, broker: None) -> None:
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
    ledger: Payouts, broker: None
) -> None:
    # given
    create(ledger)
    create(ledger)
    # when
    dispatch(ledger)
    # then
    assert position() == ledger.recorder.max_notification_id()


def test_an_unreachable_broker_fails_the_batch_and_keeps_the_position(
    ledger: Payouts, broker: None
) -> None:
    # given
    create(ledger)
    # when
    with (
        broker_at(f"redis://127.0.0.1:{unused_port()}/0"),
        pytest.raises(OperationalError),
    ):
        catch_up(ledger, PayoutDispatcher())
    # then
    assert position() == 0


def test_a_payout_held_back_by_a_broker_outage_is_enqueued_when_it_is_back(
    ledger: Payouts, broker: None
) -> None:
    # given
    payout_id = create(ledger)
    with (
        broker_at(f"redis://127.0.0.1:{unused_port()}/0"),
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
