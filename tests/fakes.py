"""Test doubles shared between modules: in-memory persistence, an event store shared
by several application instances, and an in-memory broker."""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from eventsourcing.persistence import IntegrityError
from eventsourcing.popo import POPOApplicationRecorder
from kombu import pools

from ledger.application import Payouts
from workers.celery import app

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from eventsourcing.persistence import StoredEvent

# In-memory persistence

POPO_ENV = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class SharedRecorder(POPOApplicationRecorder):
    """One in-memory store for several application instances (several processes).

    `before_next_insert` queues another writer's work, run just before the next
    insert: that writer wins the race. `lose_next_ack` commits the next insert and
    then raises, like a commit whose acknowledgement was lost. `refuse_inserts`
    makes every insert conflict.
    """

    def __init__(self) -> None:
        super().__init__()
        self.before_next_insert: deque[Callable[[], Any]] = deque()
        self.lose_next_ack = False
        self.refuse_inserts = False
        self.inserts = 0

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        while self.before_next_insert:
            self.before_next_insert.popleft()()
        self.inserts += 1
        if self.refuse_inserts:
            raise IntegrityError("conflict")
        ids = super().insert_events(stored_events, **kwargs)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise IntegrityError("acknowledgement lost")
        return ids


class PayoutsOn(Payouts):
    """A Payouts instance of its own on a given recorder, as another process is."""

    name = "payouts"

    def __init__(self, recorder: SharedRecorder) -> None:
        self._shared = recorder
        super().__init__(env=POPO_ENV)

    def construct_recorder(self) -> SharedRecorder:
        return self._shared


# The broker

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


@contextmanager
def emptied_queue_at(url: str, options: dict[str, Any] | None = None) -> Iterator[None]:
    """The broker at `url`, its queue emptied before and after."""
    with broker_at(url, options):
        take_messages()
        yield
        take_messages()


@contextmanager
def in_memory_broker() -> Iterator[None]:
    """An in-process broker: the developer's queue never sees a test message."""
    with emptied_queue_at("memory://"):
        yield
