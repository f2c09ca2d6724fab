"""Payouts on PostgreSQL: save and load, version conflicts, encryption at rest."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.db import connection
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from ledger.application import Payouts
from ledger.apps import build_payouts
from tests.builders import TEST_ACTOR, WORKER, create_keyed, new_payout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

pytestmark = pytest.mark.postgres

VISA = "4242424242424242"
OTHER_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class RacedPayouts(Payouts):
    """Another process's application: `rival_moves` run just before its next save,
    so another writer commits first."""

    name = "payouts"

    def __init__(self, env: Any) -> None:
        super().__init__(env=env)
        self.rival_moves: deque[Callable[[], Any]] = deque()

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        while self.rival_moves:
            self.rival_moves.popleft()()
        return super().save(*objs, **kwargs)


def ledger_env(**overrides: str) -> dict[str, str]:
    """The environment get_payouts() builds its application from, on the test DB."""
    env = dict(settings.EVENT_STORE)
    env["POSTGRES_DBNAME"] = connection.settings_dict["NAME"]
    env.update(overrides)
    return env


@pytest.fixture
def other_process(ledger: Payouts) -> Iterator[Payouts]:
    app = build_payouts()
    yield app
    app.close()


@pytest.fixture
def raced(ledger: Payouts) -> Iterator[RacedPayouts]:
    app = RacedPayouts(env=ledger_env())
    yield app
    app.close()


def stored_states(payout_id: UUID) -> list[bytes]:
    query = sql.SQL(
        "SELECT state FROM {}.payouts_events WHERE originator_id = %s "
        "ORDER BY originator_version"
    ).format(sql.Identifier(settings.EVENT_STORE["POSTGRES_SCHEMA"]))
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection), [payout_id])
        return [bytes(row[0]) for row in cursor.fetchall()]


def test_the_ledger_runs_on_postgresql(ledger: Payouts) -> None:
    assert type(ledger.recorder).__module__ == "eventsourcing.postgres"


def test_a_saved_payout_loads_in_another_process(
    ledger: Payouts, other_process: Payouts
) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.start_processing(payout_id, actor=WORKER)
    saved = ledger.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # when
    loaded = other_process.get_payout(payout_id)
    # then
    assert loaded == saved
    assert other_process.repository.get(payout_id).recipient.number.reveal() == VISA


def test_a_stale_aggregate_cannot_be_saved(
    ledger: Payouts, other_process: Payouts
) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    stale = other_process.repository.get(payout_id)
    ledger.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    stale.start_processing(actor=WORKER)
    # when
    with pytest.raises(IntegrityError):
        other_process.save(stale)
    # then
    assert [r.type for r in ledger.history(payout_id)] == ["Created", "Cancelled"]


def test_a_writer_that_loses_a_race_reloads_and_decides_again(
    ledger: Payouts, raced: RacedPayouts
) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    raced.rival_moves.append(
        lambda: ledger.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    )
    # when
    order = raced.start_processing(payout_id, actor=WORKER)
    # then
    assert order.status == "cancelled"
    assert [r.type for r in ledger.history(payout_id)] == ["Created", "Cancelled"]


def test_a_create_that_loses_a_race_on_its_key_answers_as_a_replay(
    ledger: Payouts, raced: RacedPayouts
) -> None:
    # given
    raced.rival_moves.append(lambda: create_keyed(ledger))
    # when
    outcome = create_keyed(raced)
    # then
    assert outcome.replayed is True
    assert len(ledger.history(outcome.payout.id)) == 1


def test_no_full_card_number_is_stored_in_the_event_store(ledger: Payouts) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    # when
    states = stored_states(payout_id)
    # then
    assert len(states) == 2
    assert all(VISA.encode() not in state for state in states)
    assert all(b"Ada Lovelace" not in state for state in states)


def test_events_cannot_be_read_without_the_cipher_key(ledger: Payouts) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    # the same key id with other key material: nothing in the process's .env can help
    current = ledger.mapper.cipher.current_key_id  # type: ignore[union-attr]
    other_key = Payouts(env=ledger_env(CIPHER_KEYS=f"{current}:{OTHER_KEY}"))
    # when
    try:
        with pytest.raises(ValueError, match="cipher tag") as unreadable:
            other_key.get_payout(payout_id)
    finally:
        other_key.close()
    # then
    assert VISA not in str(unreadable.value)


def _terminate_ledger_connections() -> int:
    """Kill every session on the test database but Django's own: the ledger's pooled
    connections die as in a database restart, unknown to the pool."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (django_pid,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid NOT IN (%s, pg_backend_pid())",
            [django_pid],
        )
        (killed,) = cursor.fetchone()
    return int(killed)


def test_dead_pooled_connections_are_replaced_without_a_check_query(
    ledger: Payouts,
) -> None:
    # given: the pool holds connections, and checks none of them on checkout
    assert settings.EVENT_STORE["POSTGRES_PRE_PING"] == "n"
    first = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    assert _terminate_ledger_connections() >= 1
    # when: the next writes and reads meet the dead connections
    second = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    _terminate_ledger_connections()
    # then: each call was retried on a live connection
    assert ledger.get_payout(first).id == first
    assert ledger.get_payout(second).status == "pending"


def test_a_step_after_another_process_wrote_decides_on_the_stored_stream(
    ledger: Payouts, other_process: Payouts
) -> None:
    # given: this process saved ProcessingStarted and keeps that copy; another
    # process then settled the payout
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.start_processing(payout_id, actor=WORKER)
    other_process.fail(payout_id, code="declined", message="no", actor=WORKER)
    # when: a redelivered task asks to start it (a decision that writes nothing)
    order = ledger.start_processing(payout_id, actor=WORKER)
    # then: not "resumed in processing" from the stale copy, which would pay it
    assert order.status == "failed"


def test_a_write_from_a_stale_copy_loses_to_the_stored_stream(
    ledger: Payouts, other_process: Payouts
) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.start_processing(payout_id, actor=WORKER)
    other_process.complete(payout_id, gateway_reference="ch_9", actor=WORKER)
    # when: this process completes it from its copy at version 2
    done = ledger.complete(payout_id, gateway_reference="ch_9", actor=WORKER)
    # then: the conflict reloaded the stream, which was already complete
    assert (done.status, done.version) == ("completed", 3)
    assert [r.type for r in ledger.history(payout_id)] == [
        "Created",
        "ProcessingStarted",
        "Completed",
    ]


def test_the_next_step_of_a_payout_saved_here_reads_no_events(
    ledger: Payouts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.start_processing(payout_id, actor=WORKER)
    reads: list[UUID] = []
    select = ledger.recorder.select_events
    monkeypatch.setattr(
        ledger.recorder,
        "select_events",
        lambda originator_id, **kw: (
            reads.append(originator_id) or select(originator_id, **kw)
        ),
    )
    # when
    ledger.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    # then
    assert reads == []
