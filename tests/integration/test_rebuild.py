"""rebuild_projections: a shadow table rebuilt from the log, checked, swapped in.

The rebuild runs DDL and many transactions, so these tests commit for real.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from io import StringIO
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections

from ledger.payout import Payout
from projections import rebuild as rebuild_module
from projections.models import PayoutView, Position
from projections.projectors import PayoutViewProjection, _row, created_values
from projections.rebuild import (
    SHADOW_NAME,
    SHADOW_TABLE,
    Discrepancy,
    RebuildInProgress,
    TamperedLedger,
    rebuild,
    rebuild_lock,
)
from projections.runner import catch_up
from tests.builders import TEST_ACTOR, WORKER, create, make_histories
from tests.support import last_notification_id, projection_position, view_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from rest_framework.test import APIClient

    from ledger.application import Payouts
    from projections.runner import Batch

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/v1/payouts/"
EVENTS = f"{settings.EVENT_STORE_SCHEMA}.payouts_events"


class NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class Skewed(PayoutViewProjection):
    """Projects correctly, then moves one payout's amount by a cent: a projector bug."""

    target: UUID | None = None

    def handle(self, batch: Batch) -> None:
        super().handle(batch)
        self.model.objects.filter(id=Skewed.target).update(amount=Decimal("0.01"))


class Inventing(PayoutViewProjection):
    """Projects correctly, plus a row that no stream backs."""

    invented = uuid4()

    def handle(self, batch: Batch) -> None:
        super().handle(batch)
        event, position = batch[0]
        if isinstance(event, Payout.Created):
            row = _row(self.model, event, position)
            row.id = Inventing.invented
            row.save(force_insert=True)


@pytest.fixture(autouse=True)
def _no_shadow_left() -> Iterator[None]:
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")


def constraint_names() -> set[str]:
    """Indexes, primary key and checks of the live table."""
    with connection.cursor() as cursor:
        return set(
            connection.introspection.get_constraints(cursor, PayoutView._meta.db_table)
        )


def shadow_exists() -> bool:
    with connection.cursor() as cursor:
        return SHADOW_TABLE in connection.introspection.table_names(cursor)


def projected_at_once(ledger: Payouts, project: Any) -> None:
    make_histories(ledger)
    project()


def projected_batch_by_batch(ledger: Payouts, project: Any) -> None:
    """The projection followed the log as it grew, in batches that end mid-stream."""
    pending = create(ledger)
    project()
    histories = make_histories(ledger)
    catch_up(ledger, PayoutViewProjection(), batch_size=3)
    ledger.start_processing(pending, actor=WORKER)
    ledger.cancel(histories[-1], reason="", actor=TEST_ACTOR)
    project()


@pytest.mark.parametrize(
    ("projected", "events", "payouts"),
    [(projected_at_once, 12, 6), (projected_batch_by_batch, 15, 7)],
    ids=["projected-at-once", "projected-batch-by-batch"],
)
def test_a_rebuild_reaches_the_same_rows_as_incremental_projection(
    ledger: Payouts,
    project: Any,
    projected: Callable[[Payouts, Any], None],
    events: int,
    payouts: int,
) -> None:
    # given
    projected(ledger, project)
    incremental = view_rows()
    # when
    summary = rebuild(ledger, batch_size=4)
    # then
    assert view_rows() == incremental
    assert len(incremental) == payouts
    assert (summary.events, summary.payouts) == (events, payouts)
    assert projection_position() == last_notification_id(ledger) == summary.position
    assert not shadow_exists()
    assert not Position.objects.filter(name=SHADOW_NAME).exists()


def test_rebuilding_an_empty_ledger_leaves_an_empty_table(ledger: Payouts) -> None:
    # when
    summary = rebuild(ledger)
    # then
    assert (summary.events, summary.payouts) == (0, 0)
    assert PayoutView.objects.count() == 0


def test_indexes_and_constraints_keep_the_names_the_migrations_know(
    ledger: Payouts, project: Any
) -> None:
    # given
    make_histories(ledger)
    project()
    before = constraint_names()
    # when
    rebuild(ledger)
    # then
    assert constraint_names() == before
    assert {i.name for i in PayoutView._meta.indexes} <= before


def test_after_the_swap_the_live_projector_continues_into_the_new_table(
    ledger: Payouts, project: Any
) -> None:
    # given
    make_histories(ledger)
    project()
    rebuild(ledger)
    # when
    later = create(ledger, amount="42.00")
    ledger.start_processing(later, actor=WORKER)
    applied = project()
    # then
    assert applied == 2
    row = PayoutView.objects.get(id=later)
    assert (row.status, row.version, row.amount) == ("processing", 2, Decimal("42"))
    assert projection_position() == last_notification_id(ledger)


def test_events_written_during_the_rebuild_reach_the_swapped_table(
    ledger: Payouts, project: Any
) -> None:
    # given
    make_histories(ledger)
    project()
    written: list[UUID] = []

    def progress(phase: str, total: int) -> NoBar:
        if phase == "check":  # after the load, before the swap
            written.append(create(ledger, amount="7.00"))
        return NoBar()

    # when
    rebuild(ledger, progress=progress)
    # then
    assert PayoutView.objects.filter(id__in=written).count() == 1
    assert projection_position() == last_notification_id(ledger)


def test_a_shadow_that_disagrees_with_the_replay_aborts_without_swapping(
    ledger: Payouts, project: Any
) -> None:
    # given
    ids = make_histories(ledger)
    project()
    before = (view_rows(), projection_position(), constraint_names())
    Skewed.target = ids[2]
    # when
    with pytest.raises(Discrepancy) as raised:
        rebuild(ledger, projection=Skewed)
    # then
    assert raised.value.payout_id == ids[2]
    assert "amount" in str(raised.value)
    assert (view_rows(), projection_position(), constraint_names()) == before


def test_a_shadow_row_without_a_stream_aborts_without_swapping(
    ledger: Payouts, project: Any
) -> None:
    # given
    make_histories(ledger)
    project()
    before = (view_rows(), projection_position())
    # when
    with pytest.raises(Discrepancy) as raised:
        rebuild(ledger, projection=Inventing)
    # then
    assert raised.value.payout_id == Inventing.invented
    assert "without a stream" in str(raised.value)
    assert (view_rows(), projection_position()) == before


def test_a_second_concurrent_rebuild_is_refused(ledger: Payouts, project: Any) -> None:
    # given: a rebuild paused in the middle of its load
    make_histories(ledger)
    project()
    loading, resume = threading.Event(), threading.Event()
    outcome: list[object] = []

    def progress(phase: str, total: int) -> NoBar:
        loading.set()
        resume.wait(10)
        return NoBar()

    def first() -> None:
        try:
            outcome.append(rebuild(ledger, progress=progress))
        except Exception as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert loading.wait(10)
    # when
    try:
        with pytest.raises(RebuildInProgress):
            rebuild(ledger)
        with pytest.raises(CommandError, match="another rebuild"):
            call_command("rebuild_projections", stdout=StringIO())
    finally:
        resume.set()
        thread.join(30)
    # then
    assert not isinstance(outcome[0], Exception)


def test_the_command_prints_a_summary(ledger: Payouts, project: Any) -> None:
    # given
    make_histories(ledger)
    project()
    out = StringIO()
    # when
    call_command("rebuild_projections", stdout=out)
    # then
    assert "12 events, 6 payouts" in out.getvalue()
    assert "events/s" in out.getvalue()


def test_the_command_exits_non_zero_when_a_rebuild_is_running(
    ledger: Payouts,
) -> None:
    # given
    with rebuild_lock(), pytest.raises(CommandError) as raised:
        # when
        call_command("rebuild_projections", stdout=StringIO())
    # then
    assert "nothing swapped" in str(raised.value)


@pytest.mark.postgres
def test_the_live_table_serves_the_api_during_a_rebuild(
    ledger: Payouts, project: Any, staff_client: APIClient
) -> None:
    # given
    for _ in range(150):
        create(ledger)
    project()
    done = threading.Event()
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(rebuild(ledger, batch_size=5))
        except Exception as exc:
            outcome.append(exc)
        finally:
            done.set()
            connections.close_all()

    # when
    thread = threading.Thread(target=run)
    thread.start()
    statuses, counts = [], []
    while not done.is_set():
        response = staff_client.get(LIST, {"limit": 10})
        statuses.append(response.status_code)
        counts.append(PayoutView.objects.count())
    thread.join(30)
    # then
    assert not isinstance(outcome[0], Exception), outcome
    assert len(statuses) > 5
    assert set(statuses) == {200}
    assert set(counts) == {150}
    assert PayoutView.objects.count() == 150


@pytest.mark.postgres
def test_the_live_projector_runs_through_the_swap_into_the_new_table(
    ledger: Payouts, project: Any
) -> None:
    # given: the live projector catching up in a loop, and events arriving meanwhile
    make_histories(ledger)
    project()
    stop, errors = threading.Event(), []

    def live_projector() -> None:
        try:
            while not stop.is_set():
                catch_up(ledger, PayoutViewProjection(), batch_size=3)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def progress(phase: str, total: int) -> NoBar:
        make_histories(ledger)
        return NoBar()

    thread = threading.Thread(target=live_projector)
    thread.start()
    # when
    try:
        rebuild(ledger, batch_size=3, progress=progress)
        after_swap = create(ledger, amount="3.00")
        deadline = time.monotonic() + 10
        while (
            projection_position() < last_notification_id(ledger)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    # then
    assert errors == []
    assert PayoutView.objects.filter(id=after_swap).exists()
    assert projection_position() == last_notification_id(ledger)
    live = view_rows()
    PayoutView.objects.all().delete()
    Position.objects.filter(name=PayoutViewProjection.name).update(position=0)
    project()
    assert view_rows() == live
    assert len(live) == 6 * 3 + 1


@pytest.mark.postgres
def test_payouts_whose_events_span_many_read_batches_rebuild_whole(
    ledger: Payouts, project: Any
) -> None:
    # given: interleaved streams, read two events at a time
    first, second = create(ledger), create(ledger, amount="9.00")
    for payout_id in (first, second):
        ledger.start_processing(payout_id, actor=WORKER)
    ledger.complete(first, gateway_reference="ch_9", actor=WORKER)
    ids = make_histories(ledger)
    ledger.fail(second, code="card_declined", message="Declined.", actor=WORKER)
    project()
    incremental = view_rows()
    # when
    summary = rebuild(ledger, batch_size=2)
    # then
    assert view_rows() == incremental
    assert summary.payouts == len(ids) + 2
    assert projection_position() == last_notification_id(ledger) == summary.position


@pytest.mark.postgres
def test_a_tampered_event_stops_the_rebuild_and_leaves_the_live_table(
    ledger: Payouts, project: Any
) -> None:
    # given: a Created copied under another payout id, which the projector skips
    source = make_histories(ledger)[0]
    clone = uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "
            f"SELECT %s, originator_version, topic, state FROM {EVENTS} "
            "WHERE originator_id = %s AND originator_version = 1",
            [clone, source],
        )
    project()
    before = (view_rows(), projection_position(), constraint_names())
    # when
    with pytest.raises(TamperedLedger) as raised:
        rebuild(ledger)
    # then
    assert str(raised.value.tampered.payout_id) == str(clone)
    assert (view_rows(), projection_position(), constraint_names()) == before


@pytest.mark.postgres
def test_a_bulk_loaded_row_that_disagrees_with_the_replay_aborts_without_swapping(
    ledger: Payouts, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the projector's row function off by a cent for one payout
    ids = make_histories(ledger)
    project()
    before = (view_rows(), projection_position(), constraint_names())

    def skewed(event: Payout.Created, position: int) -> dict[str, Any]:
        values = created_values(event, position)
        if event.originator_id == ids[3]:
            values["amount"] += Decimal("0.01")
        return values

    monkeypatch.setattr(rebuild_module, "created_values", skewed)
    # when
    with pytest.raises(Discrepancy) as raised:
        rebuild(ledger)
    # then
    assert raised.value.payout_id == ids[3]
    assert "amount" in str(raised.value)
    assert (view_rows(), projection_position(), constraint_names()) == before
    assert shadow_exists()  # kept for inspection
