"""Races on the real event store: duplicate deliveries, cancel against start, one key.

Threads are lined up on a Barrier so their writes collide. The ledger writes on the
event store's own connections (PostgreSQL or SQLite, whichever the run uses); threads
serving API requests also need Django's, hence `transaction=True` for those tests.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ledger.errors import InvalidTransition
from tests.api.support import assert_problem, detail_url, post_payout
from tests.builders import TEST_ACTOR, WORKER, card_payout, new_payout
from workers import processing
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from django.contrib.auth.models import User

    from ledger.application import PaymentOrder, Payouts
    from workers.gateway.base import SubmitResult

CANCEL = {"status": "cancelled", "reason": "race"}


class Meeting:
    """Holds the first `parties` callers of `attend` until all of them have come, so
    that they go on together; later callers pass straight through."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties)
        self.lock = threading.Lock()
        self.arrived = 0

    def attend(self) -> None:
        with self.lock:
            self.arrived += 1
            first = self.arrived <= self.barrier.parties
        if first:
            self.barrier.wait(timeout=10)


class Provider(FakeGateway):
    """FakeGateway made atomic per key, as a provider honouring idempotency keys is.

    FakeGateway alone checks and then records a charge in two steps, so two threads
    could both charge. `charged` has one entry per charge actually made. With
    `workers`, the first that many calls for a payout (its charge, or the lookups of
    the workers that found it already processing) are answered only once all have
    been made: every worker is at the provider at once, and none has recorded an
    outcome yet.
    """

    def __init__(self, workers: int = 0) -> None:
        super().__init__()
        self.workers = workers
        self.meetings: dict[UUID, Meeting] = {}
        self.lock = threading.Lock()
        self.charged: list[UUID] = []

    def pay(self, order: PaymentOrder) -> SubmitResult:
        self._meet(order.payout_id)
        with self.lock:
            if order.payout_id not in self.charges:
                self.charged.append(order.payout_id)
            return super().pay(order)

    def status(self, payout_id: UUID) -> SubmitResult | None:
        self._meet(payout_id)
        with self.lock:
            return super().status(payout_id)

    def _meet(self, payout_id: UUID) -> None:
        if not self.workers:
            return
        with self.lock:
            meeting = self.meetings.setdefault(payout_id, Meeting(self.workers))
        meeting.attend()


def run_together(
    *targets: Callable[[], Any], expected: tuple[type[Exception], ...] = ()
) -> list[Any]:
    """Run each target in its own thread, released at once; results in order.

    An `expected` exception is that target's result; any other is raised here, with
    its traceback. Each thread closes its Django connection.
    """
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    unexpected: list[BaseException] = []

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except expected as exc:
            results[index] = exc
        except BaseException as exc:  # raised in the test's thread below
            unexpected.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, t), daemon=True)
        for i, t in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if unexpected:
        raise unexpected[0]
    return results


def types(ledger: Payouts, payout_id: UUID) -> list[str]:
    return [record.type for record in ledger.history(payout_id)]


def client_for(user: User) -> APIClient:
    # The test client is not thread-safe: one per thread.
    client = APIClient()
    client.force_authenticate(user)
    return client


# (a) Duplicate delivery


def test_a_payout_delivered_twice_in_a_row_is_paid_and_completed_once(
    ledger: Payouts,
) -> None:
    # given
    gateway = Provider()
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    # when
    statuses = [
        processing.process(ledger, gateway, payout_id, actor=WORKER) for _ in range(2)
    ]
    # then
    assert statuses == ["completed", "completed"]
    assert gateway.charged == [payout_id]
    assert gateway.calls == [payout_id]
    assert types(ledger, payout_id) == ["Created", "ProcessingStarted", "Completed"]


def test_a_payout_delivered_to_many_workers_at_once_is_paid_and_completed_once(
    ledger: Payouts,
) -> None:
    # given
    gateway = Provider(workers=8)
    payout_ids = [
        ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id for _ in range(3)
    ]
    for payout_id in payout_ids:
        # when: eight workers got the same message
        statuses = run_together(
            *[
                lambda p=payout_id: processing.process(ledger, gateway, p, actor=WORKER)
                for _ in range(8)
            ]
        )
        # then
        assert statuses == ["completed"] * 8
        assert types(ledger, payout_id) == [
            "Created",
            "ProcessingStarted",
            "Completed",
        ]
    assert gateway.charged == payout_ids


# (b) Cancel against ProcessingStarted


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_start_of_processing_has_one_winner(
    ledger: Payouts, staff_user: User
) -> None:
    for _ in range(3):
        # given
        payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
        url = detail_url(payout_id)
        patchers = [client_for(staff_user) for _ in range(8)]
        deleters = [client_for(staff_user) for _ in range(6)]
        # when: 20 cancellers (API and ledger) against 6 workers starting it
        results = run_together(
            *[lambda c=c, u=url: c.patch(u, CANCEL, format="json") for c in patchers],
            *[lambda c=c, u=url: c.delete(u) for c in deleters],
            *[
                lambda p=payout_id: ledger.cancel(p, reason="race", actor=TEST_ACTOR)
                for _ in range(6)
            ],
            *[
                lambda p=payout_id: ledger.start_processing(p, actor=WORKER)
                for _ in range(6)
            ],
            expected=(InvalidTransition,),
        )
        # then: the history holds exactly one of the two
        history = types(ledger, payout_id)
        assert history in (["Created", "Cancelled"], ["Created", "ProcessingStarted"])
        patched, deleted = results[:8], results[8:14]
        cancelled, started = results[14:20], results[20:]
        if history[1] == "Cancelled":
            assert [r.status_code for r in patched] == [200] * 8
            assert {(r.json()["status"], r.json()["version"]) for r in patched} == {
                ("cancelled", 2)
            }
            assert [r.status_code for r in deleted] == [204] * 6
            assert {(s.status, s.version) for s in cancelled} == {("cancelled", 2)}
            assert {o.status for o in started} == {"cancelled"}
        else:
            for response in [*patched, *deleted]:
                problem = assert_problem(response, 409)
                assert problem["current_status"] == "processing"
            assert all(isinstance(e, InvalidTransition) for e in cancelled), cancelled
            assert {o.status for o in started} == {"processing"}
            assert sum(not o.resumed for o in started) == 1


# (c) One Idempotency-Key sent many times at once


@pytest.mark.django_db(transaction=True)
def test_one_idempotency_key_sent_concurrently_creates_one_payout(
    ledger: Payouts, staff_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: no request inserts until all twelve are about to, so that each has
    # looked the key up and found nothing (on SQLite they would queue up otherwise)
    insert = ledger.recorder.insert_events
    every_request = Meeting(12)

    def insert_with_the_others(*args: Any, **kwargs: Any) -> Any:
        every_request.attend()
        return insert(*args, **kwargs)

    monkeypatch.setattr(ledger.recorder, "insert_events", insert_with_the_others)
    clients = [client_for(staff_user) for _ in range(12)]
    body = card_payout()
    # when
    responses = run_together(
        *[
            lambda c=c: post_payout(c, body, HTTP_IDEMPOTENCY_KEY="order-118")
            for c in clients
        ]
    )
    # then
    assert [r.status_code for r in responses] == [201] * 12, responses
    (payout_id,) = {uuid.UUID(r.json()["id"]) for r in responses}
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * 11
    assert types(ledger, payout_id) == ["Created"]
    assert len(ledger.feed(after=0, limit=100)) == 1
