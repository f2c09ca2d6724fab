"""Rebuilding the payout read model from the first event, beside the live one.

The events are projected into a shadow table by the projector's own code, while the
live table keeps serving; the shadow is then checked against a replay of every stream
(each payout folded from its events by the aggregate itself, not by the projector) and
swapped in atomically. Every step reads and writes in batches: memory stays constant
whatever the size of the ledger.

PostgreSQL: the shadow is `CREATE TABLE ... (LIKE live INCLUDING ALL EXCLUDING
INDEXES)` plus its primary key; the secondary indexes are built after the load, under
temporary names. The swap is one transaction: lock the live projector's position row
(it waits there), project and check the last events, drop the live table, rename the
shadow and its indexes to the names Django's migrations know, move the live position
to the shadow's. The projector then continues into the new table.

Loading, on PostgreSQL (BulkLoad): one read of the event table in stream order (its
primary key), `batch_size` events per round trip, one stream in memory at a time.
Each event is decoded once by the ledger's mapper (a tampered event stops the
rebuild: TamperedLedger), then folded twice: by the projector's row functions into
the shadow row, and by the Payout aggregate into the replay. Both are written with
COPY, the replay into a temporary table; the check compares the two in SQL and counts
the events read against the table. The check re-reads nothing: it shares the
decoding, not the folding. A projection class that overrides `handle`, and SQLite,
keep the batch-by-batch path (the projector's handle, then a replay by stream).

SQLite (embedded mode): the same shadow table, made by Django's schema editor; the
swap transaction holds SQLite's write lock (readers keep reading the old table in WAL
mode) and creates the indexes under their own names after the rename, because SQLite
cannot rename an index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from django.apps.registry import Apps
from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from eventsourcing.persistence import Notification

from ledger.errors import TamperedEvent
from ledger.payout import Payout
from projections.eventtable import EventTable
from projections.follow import advisory_key, direct_connection
from projections.models import PayoutView, Position
from projections.projectors import (
    PayoutViewProjection,
    change_values,
    created_values,
)
from projections.replay import (
    FIELDS,
    Discrepancy,
    difference,
    expected_row,
    fold,
    row_values,
    without_stream,
)
from projections.runner import catch_up
from projections.selectors import position_of
from projections.tracking import DjangoTrackingRecorder

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

    from ledger.application import Payouts
    from projections.runner import Batch

logger = logging.getLogger(__name__)

LIVE_TABLE = PayoutView._meta.db_table
SHADOW_TABLE = f"{LIVE_TABLE}_rebuild"
SHADOW_NAME = f"{PayoutViewProjection.name}_rebuild"
LOCK_NAME = "rebuild_projections"


class RebuildError(Exception):
    """The rebuild stopped; the live table and its position are untouched."""


class RebuildInProgress(RebuildError):
    def __init__(self) -> None:
        super().__init__("another rebuild_projections is running")


class TamperedLedger(RebuildError):
    """An event does not authenticate in its row, or its chain is seeded for another
    payout: the live projector skips it, but a rebuild cannot vouch for a table
    built around it, so it stops (verify_ledger names it)."""

    def __init__(self, tampered: TamperedEvent) -> None:
        super().__init__(f"a tampered event in the store: {tampered}")
        self.tampered = tampered


@dataclass(frozen=True)
class Summary:
    events: int
    payouts: int
    position: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Bar(Protocol):
    def update(self, n: int) -> Any: ...

    def close(self) -> Any: ...


# Called once per phase ("project", "check") with that phase's total.
ProgressFactory = Callable[[str, int], Bar]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _shadow_model(table: str) -> Any:
    """PayoutView's fields on another table, in a registry of its own: neither the
    migrations nor the admin ever see it."""
    attrs: dict[str, Any] = {f.name: f.clone() for f in PayoutView._meta.local_fields}
    attrs["__module__"] = __name__
    attrs["Meta"] = type(
        "Meta",
        (),
        {
            "app_label": "projections",
            "db_table": table,
            "managed": False,
            "apps": Apps(),
        },
    )
    return type("PayoutViewShadow", (models.Model,), attrs)


PayoutViewShadow = _shadow_model(SHADOW_TABLE)


def rebuild(
    payouts: Payouts,
    *,
    batch_size: int = 2000,
    progress: ProgressFactory | None = None,
    projection: type[PayoutViewProjection] = PayoutViewProjection,
    lock_timeout: float = 30.0,
) -> Summary:
    """Rebuild, check and swap in PayoutView; raises RebuildError (the live table is
    then untouched) when another rebuild runs or a lock times out, Discrepancy when
    the check fails.
    On a failed check the shadow table stays for inspection; the next run replaces it."""
    if connection.in_atomic_block:
        raise RebuildError("rebuild runs its own transactions: call it outside one")
    with rebuild_lock():
        return Rebuild(
            payouts,
            batch_size=batch_size,
            progress=progress,
            projection=projection,
            lock_timeout=lock_timeout,
        ).run()


@contextlib.contextmanager
def rebuild_lock() -> Iterator[None]:
    """One rebuild at a time: a PostgreSQL advisory lock (not the projector's), or an
    exclusive file lock in embedded mode. Refuses at once rather than queueing."""
    if settings.IS_POSTGRES:
        conn = direct_connection()
        try:
            key = advisory_key(LOCK_NAME)
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (row and row[0]):
                raise RebuildInProgress
            yield
        finally:
            conn.close()  # ends the session, and the lock with it
        return
    path = Path(settings.RUN_DIR) / f"{LOCK_NAME}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RebuildInProgress from None
        yield


class _Shadow:
    """The shadow projection as a follower; counts what it applied and, when asked,
    checks every payout a batch touched against the replay, inside the batch's
    transaction."""

    def __init__(self, projection: PayoutViewProjection, check: Check) -> None:
        self.projection = projection
        self.name = projection.name
        self.topics = projection.topics
        self.check = check
        self.verify = False
        self.position = 0
        self.events = 0

    def handle(self, batch: Batch) -> None:
        self.projection.handle(batch)
        self.position = batch[-1][1]
        self.events += len(batch)
        if self.verify:
            ids = sorted({event.originator_id for event, _ in batch})
            rows = PayoutViewShadow.objects.in_bulk(ids)
            self.check.compare(
                ids, self.position, {k: row_values(v) for k, v in rows.items()}
            )


class Rebuild:
    """The steps of one rebuild; `run` does them all. Hold `rebuild_lock` around it."""

    def __init__(
        self,
        payouts: Payouts,
        *,
        batch_size: int = 2000,
        progress: ProgressFactory | None = None,
        projection: type[PayoutViewProjection] = PayoutViewProjection,
        lock_timeout: float = 30.0,
    ) -> None:
        self.payouts = payouts
        self.batch_size = batch_size
        self.progress = progress or (lambda phase, total: _NoBar())
        self.lock_timeout = lock_timeout
        self.check = Check(payouts, batch_size=batch_size)
        self.shadow = _Shadow(
            projection(model=PayoutViewShadow, name=SHADOW_NAME), self.check
        )
        self.postgres = connection.vendor == "postgresql"
        # A projection that overrides handle (a test's deliberate bug, a subclass)
        # is projected by its handle, batch by batch: the bulk load folds with the
        # projector's row functions and would bypass it.
        self.bulk = (
            BulkLoad(payouts, SHADOW_TABLE, batch_size=batch_size)
            if self.postgres and projection.handle is PayoutViewProjection.handle
            else None
        )

    def run(self) -> Summary:
        started = time.perf_counter()
        phases: dict[str, float] = {}

        def timed(phase: str, work: Callable[[], object]) -> None:
            began = time.perf_counter()
            work()
            phases[phase] = round(time.perf_counter() - began, 2)

        try:
            timed("prepare", self.prepare)
            timed("load", self.load)
            timed("index", self.index)
            timed("check", self._check_all)
        finally:
            if self.bulk is not None:
                self.bulk.close()
        self.shadow.verify = True
        timed("catch_up", self._project)  # what arrived meanwhile, checked per batch
        timed("swap", self.swap)
        summary = Summary(
            events=self.shadow.events,
            payouts=PayoutView.objects.count(),
            position=self.shadow.position,
            seconds=time.perf_counter() - started,
            phases=phases,
        )
        logger.info(
            "rebuilt %s: %d events, %d payouts in %.1fs",
            LIVE_TABLE,
            summary.events,
            summary.payouts,
            summary.seconds,
        )
        return summary

    def prepare(self) -> None:
        """An empty shadow table (a leftover of an aborted run is dropped) at position 0."""
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_q(SHADOW_TABLE)}")
            if self.postgres:
                cursor.execute(
                    f"CREATE TABLE {_q(SHADOW_TABLE)} (LIKE {_q(LIVE_TABLE)} "
                    "INCLUDING ALL EXCLUDING INDEXES)"
                )
                cursor.execute(
                    f"ALTER TABLE {_q(SHADOW_TABLE)} ADD CONSTRAINT "
                    f"{_q(SHADOW_TABLE + '_pkey')} PRIMARY KEY (id)"
                )
        if not self.postgres:
            with connection.schema_editor() as editor:
                editor.create_model(PayoutViewShadow)
        Position.objects.filter(name=SHADOW_NAME).delete()

    def load(self) -> None:
        """Project every event there is now into the shadow, with a progress bar."""
        top = self.payouts.recorder.max_notification_id() or 0
        bar = self.progress("project", top)
        if self.bulk is None:
            self._project(bar)
            return
        try:
            self.shadow.events = self.bulk.load(top, bar, SHADOW_NAME)
        finally:
            bar.close()
        self.shadow.position = top

    def _check_all(self) -> None:
        if self.bulk is None:
            self.check.all(self.shadow.position, self.progress)
        else:
            self.bulk.check(self.progress)

    def index(self) -> None:
        """PostgreSQL: build the secondary indexes once, after the load (faster than
        maintaining them row by row), then vacuum and analyze, since autovacuum may be
        off. SQLite creates its indexes in the swap."""
        if not self.postgres:
            return
        editor = connection.schema_editor()  # only renders SQL here
        with connection.cursor() as cursor:
            for index in PayoutView._meta.indexes:
                temporary = _renamed(index, _temporary(index.name))
                cursor.execute(str(temporary.create_sql(PayoutViewShadow, editor)))
            cursor.execute(f"VACUUM (ANALYZE) {_q(SHADOW_TABLE)}")

    def swap(self) -> None:
        """Lock the live projector out, project and check the last events, swap."""
        try:
            self._swap()
        except OperationalError as exc:  # a lock timeout, most likely
            raise RebuildError(f"the swap failed: {exc}") from exc
        if not self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {_q(LIVE_TABLE)}")

    def _swap(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            if self.postgres:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{int(self.lock_timeout * 1000)}ms"],
                )
            live = DjangoTrackingRecorder(PayoutViewProjection.name).lock()
            stop = self.payouts.recorder.max_notification_id() or 0
            self._project(stop=stop)
            self.shadow.position = position_of(SHADOW_NAME)
            if self.shadow.position < live:
                raise RebuildError(
                    f"the shadow is at {self.shadow.position}, behind the live "
                    f"projection at {live}"
                )
            if self.postgres:
                self._swap_postgres(cursor)
            else:
                self._swap_sqlite(cursor)
            Position.objects.filter(name=PayoutViewProjection.name).update(
                position=self.shadow.position
            )
            Position.objects.filter(name=SHADOW_NAME).delete()

    def _swap_postgres(self, cursor: Any) -> None:
        pkey = _primary_key_name(cursor, LIVE_TABLE)
        cursor.execute(f"DROP TABLE {_q(LIVE_TABLE)}")
        cursor.execute(f"ALTER TABLE {_q(SHADOW_TABLE)} RENAME TO {_q(LIVE_TABLE)}")
        cursor.execute(
            f"ALTER TABLE {_q(LIVE_TABLE)} RENAME CONSTRAINT "
            f"{_q(SHADOW_TABLE + '_pkey')} TO {_q(pkey)}"
        )
        for index in PayoutView._meta.indexes:
            cursor.execute(
                f"ALTER INDEX {_q(_temporary(index.name))} RENAME TO {_q(index.name)}"
            )

    def _swap_sqlite(self, cursor: Any) -> None:
        cursor.execute(f"DROP TABLE {_q(LIVE_TABLE)}")
        cursor.execute(f"ALTER TABLE {_q(SHADOW_TABLE)} RENAME TO {_q(LIVE_TABLE)}")
        editor = connection.schema_editor()  # only renders SQL here
        for index in PayoutView._meta.indexes:
            cursor.execute(str(index.create_sql(PayoutView, editor)))

    def _project(self, bar: Bar | None = None, *, stop: int | None = None) -> None:
        bar = bar or _NoBar()
        try:
            while True:
                before = self.shadow.position
                applied = catch_up(
                    self.payouts, self.shadow, batch_size=self.batch_size, stop=stop
                )
                bar.update(self.shadow.position - before)
                if applied < self.batch_size:
                    break
        finally:
            bar.close()


class Check:
    """The shadow against a replay of the event store, at a position: every payout
    folded from its events by the Payout aggregate, compared field by field."""

    def __init__(self, payouts: Payouts, *, batch_size: int) -> None:
        self.payouts = payouts
        self.store = EventTable(payouts)
        self.batch_size = batch_size

    def all(self, position: int, progress: ProgressFactory) -> int:
        """Walk the streams in id order, a batch at a time, beside the shadow rows of
        the same id range: a missing, extra or different row raises Discrepancy."""
        bar = progress("check", PayoutViewShadow.objects.count())
        checked = 0
        after: UUID | None = None
        try:
            while ids := self.store.stream_ids(
                beyond=after, limit=self.batch_size, until=position
            ):
                rows = PayoutViewShadow.objects.filter(id__lte=ids[-1])
                if after is not None:
                    rows = rows.filter(id__gt=after)
                self.compare(ids, position, {r["id"]: r for r in rows.values()})
                after = ids[-1]
                checked += len(ids)
                bar.update(len(ids))
            rest = PayoutViewShadow.objects.order_by("id")
            if after is not None:
                rest = rest.filter(id__gt=after)
            extra = rest.values_list("id", flat=True).first()
            if extra is not None:
                raise without_stream(extra)
        finally:
            bar.close()
        return checked

    def compare(
        self, ids: Sequence[UUID], position: int, rows: dict[UUID, dict[str, Any]]
    ) -> None:
        expected = dict(self.replay(ids, position))
        for payout_id in sorted(set(expected) | set(rows)):
            found = difference(payout_id, rows.get(payout_id), expected.get(payout_id))
            if found is not None:
                raise found

    def replay(
        self, ids: Sequence[UUID], position: int
    ) -> Iterator[tuple[UUID, dict[str, Any]]]:
        events = self.store.events_of(ids, until=position)
        for payout_id, stream in groupby(events, key=lambda e: e.originator_id):
            stored = list(stream)
            decoded = map(self.payouts.mapper.to_domain_event, stored)
            payout = fold(UUID(str(payout_id)), decoded)
            yield payout.id, expected_row(payout, stored[-1].id)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _temporary(index_name: str) -> str:
    return f"{index_name}_rebuild"


def _renamed(index: models.Index, name: str) -> models.Index:
    clone = index.clone()
    clone.name = name
    return clone


def _primary_key_name(cursor: Any, table: str) -> str:
    constraints = connection.introspection.get_constraints(cursor, table)
    return next(name for name, c in constraints.items() if c["primary_key"])


# Every column of the projection, in the order both COPYs write them.
COLUMNS = ("id", *FIELDS)


class BulkLoad:
    """PostgreSQL, with the projector's own handle: the load and its check in one
    read of the event table, in stream order (the primary key's), one stream at a
    time, so memory stays at one stream whatever the size of the ledger.

    Each event is decoded once by the ledger's mapper (decryption, binding) and
    folded twice: into the projector's row (projectors.created_values and
    change_values, what handle writes) and by the Payout aggregate (its mutators,
    seed and hash chain). Both are written with COPY, the rows into the shadow and
    the replay into a temporary table; the check then compares the two tables in
    SQL, field by field, and counts the events read against the table."""

    def __init__(self, payouts: Payouts, shadow_table: str, *, batch_size: int) -> None:
        self.payouts = payouts
        self.batch_size = batch_size  # events per round trip of the read
        self.shadow_table = shadow_table
        self.expected_table = f"{shadow_table}_expected"
        self.store = EventTable(payouts)
        self.top = 0
        self.events = 0
        self.replay: psycopg.Connection | None = None

    def load(self, top: int, bar: Bar, position_name: str) -> int:
        """Project every event up to notification `top` into the empty shadow and
        set its position to `top`, in one transaction; returns the events read.
        The replay goes to a temporary table on a connection of its own (one
        connection runs one COPY at a time), kept open for `check`."""
        self.top = top
        columns = ", ".join(_q(c) for c in COLUMNS)
        self.replay = direct_connection()
        try:
            self.replay.execute(
                f"CREATE TEMPORARY TABLE {_q(self.expected_table)} "
                f"(LIKE {_q(self.shadow_table)})"
            )
            with transaction.atomic():
                with (
                    connection.cursor() as cursor,
                    cursor.cursor.copy(  # psycopg's own cursor, for COPY
                        f"COPY {_q(self.shadow_table)} ({columns}) FROM STDIN"
                    ) as rows,
                    self.replay.cursor() as replay_cursor,
                    replay_cursor.copy(
                        f"COPY {_q(self.expected_table)} ({columns}) FROM STDIN"
                    ) as replay,
                ):
                    for stream in self._streams(top, bar):
                        row, expected = self._fold(stream)
                        if row is not None:
                            rows.write_row(_copy_values(row))
                        replay.write_row(_copy_values(expected))
                # With the rows, as catch_up would: a crash loses both or neither.
                Position.objects.update_or_create(
                    name=position_name, defaults={"position": top}
                )
        except BaseException:
            self.close()
            raise
        return self.events

    def close(self) -> None:
        """Drop the replay (it is temporary: closing its session drops it)."""
        if self.replay is not None:
            self.replay.close()
            self.replay = None

    def _streams(self, top: int, bar: Bar) -> Iterator[list[tuple[Any, int]]]:
        """Every stream up to `top`, decoded, one at a time, in id order."""
        query = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {self.store.table} WHERE notification_id <= %s "
            "ORDER BY originator_id, originator_version"
        )
        mapper = self.payouts.mapper
        conn = direct_connection()
        try:
            with conn.transaction(), conn.cursor(name="rebuild_load") as cursor:
                cursor.itersize = self.batch_size
                cursor.execute(query, (top,))
                stream: list[tuple[Any, int]] = []
                current = None
                for position, ident, version, topic, state in cursor:
                    if ident != current and stream:
                        yield stream
                        bar.update(len(stream))
                        stream = []
                    current = ident
                    stored = Notification(
                        id=position,
                        originator_id=ident,
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                    try:
                        stream.append((mapper.to_domain_event(stored), position))
                    except TamperedEvent as tampered:
                        raise TamperedLedger(tampered) from None
                    self.events += 1
                if stream:
                    yield stream
                    bar.update(len(stream))
        finally:
            conn.close()

    @staticmethod
    def _fold(
        stream: list[tuple[Any, int]],
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """One stream folded by the projector's row logic, and by the aggregate."""
        row: dict[str, Any] | None = None
        for event, position in stream:
            if isinstance(event, Payout.Created):
                if row is None:  # handle inserts ignoring conflicts: the first wins
                    row = created_values(event, position)
            elif row is not None:
                change = change_values(event, position)
                if change is not None and row["version"] < change["version"]:
                    row.update(change)
        payout_id = stream[0][0].originator_id
        try:
            payout = fold(payout_id, (event for event, _ in stream))
        except TamperedEvent as tampered:
            raise TamperedLedger(tampered) from None
        expected = expected_row(payout, stream[-1][1])
        expected["id"] = payout_id
        return row, expected

    def check(self, progress: ProgressFactory) -> int:
        """The shadow against the replay, in SQL; then the events read against the
        event table, so that a stream the read missed cannot pass unseen."""
        bar = progress("check", 1)
        try:
            assert self.replay is not None, "check runs after load"
            with self.replay.cursor() as cursor:
                found = self._first_difference(cursor)
            self.close()
            if found is not None:
                raise found
            stored = self.store.count_events(until=self.top)
            if stored != self.events:
                raise RebuildError(
                    f"read {self.events} events up to {self.top}, the event table "
                    f"holds {stored}"
                )
            bar.update(1)
        finally:
            self.close()
            bar.close()
        return self.events

    def _first_difference(self, cursor: Any) -> Discrepancy | None:
        differs = " OR ".join(f"s.{_q(f)} IS DISTINCT FROM e.{_q(f)}" for f in FIELDS)
        pick = ", ".join(f"s.{_q(f)}, e.{_q(f)}" for f in FIELDS)
        cursor.execute(
            f"SELECT s.id, e.id, {pick} FROM {_q(self.shadow_table)} s "
            f"FULL JOIN {_q(self.expected_table)} e ON s.id = e.id "
            f"WHERE s.id IS NULL OR e.id IS NULL OR {differs} "
            "ORDER BY coalesce(s.id, e.id) LIMIT 1"
        )
        found = cursor.fetchone()
        if found is None:
            return None
        got_id, want_id, *values = found
        got = dict(zip(FIELDS, values[0::2], strict=True)) if got_id else None
        want = dict(zip(FIELDS, values[1::2], strict=True)) if want_id else None
        difference_found = difference(got_id or want_id, got, want)
        if difference_found is not None:
            return difference_found
        return Discrepancy(got_id, "differs from the replay")  # e.g. jsonb spacing


def _copy_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        json.dumps(row[c]) if c == "recipient" else row.get(c) for c in COLUMNS
    )
