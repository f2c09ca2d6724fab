"""Rebuilding the payout read model from the first event, beside the live one.

The events are projected into a shadow table by the projector's own code, while the
live table keeps serving; the shadow is then checked against a replay of every stream
(each payout folded from its events by the aggregate itself, not by the projector) and
swapped in atomically. Every step reads and writes in batches: memory stays constant
whatever the size of the ledger.

The swap is one transaction: lock the live projector's position row (it waits
there), project and check the last events, swap the shadow in (database.ShadowTable:
under the live table's name, with the key and index names Django's migrations know),
move the live position to the shadow's. The projector then continues into the new
table. On SQLite that transaction holds the write lock; readers keep reading the old
table in WAL mode.

Loading, on PostgreSQL (BulkLoad): one read of the event table in stream order (its
primary key), `batch_size` events per round trip, one stream in memory at a time.
Each event is decoded once by the ledger's mapper (a tampered event stops the
rebuild: TamperedLedger), then folded twice: by the projector's row functions into
the shadow row, and by the Payout aggregate into the replay. Both are written with
COPY, the replay into a temporary table (database.ReplayTable); the check compares
the two in SQL and counts the events read against the table. The check re-reads
nothing: it shares the decoding, not the folding. A projection class that overrides
`handle`, and SQLite, keep the batch-by-batch path (the projector's handle, then a
replay by stream).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from django.db import OperationalError, connection, transaction

from ledger.errors import TamperedEvent
from ledger.payout import Payout
from projections.database import (
    EventTable,
    NamedLock,
    ReplayTable,
    ShadowTable,
    is_postgres,
    limit_lock_waits,
)
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
from projections.runner import drain
from projections.selectors import position_of
from projections.tracking import DjangoTrackingRecorder

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from eventsourcing.persistence import Notification

    from ledger.application import Payouts
    from projections.runner import Batch

logger = logging.getLogger(__name__)

SHADOW = ShadowTable(PayoutView)
LIVE_TABLE = SHADOW.live_table
SHADOW_TABLE = SHADOW.table
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
            batch_size,
            progress or (lambda phase, total: _NoBar()),
            projection,
            lock_timeout,
        ).run()


@contextlib.contextmanager
def rebuild_lock() -> Iterator[None]:
    """One rebuild at a time, under a lock of its own (not the projector's); refuses
    at once rather than queueing."""
    lock = NamedLock(LOCK_NAME)
    try:
        if not lock.try_acquire():
            raise RebuildInProgress
        yield
    finally:
        lock.release()


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
            rows = SHADOW.model.objects.in_bulk(ids)
            self.check.compare(
                ids, self.position, {k: row_values(v) for k, v in rows.items()}
            )


class Rebuild:
    """The steps of one rebuild; `run` does them all. Hold `rebuild_lock` around it."""

    def __init__(
        self,
        payouts: Payouts,
        batch_size: int,
        progress: ProgressFactory,
        projection: type[PayoutViewProjection],
        lock_timeout: float,
    ) -> None:
        self.payouts = payouts
        self.batch_size = batch_size
        self.progress = progress
        self.lock_timeout = lock_timeout
        self.check = Check(payouts, batch_size=batch_size)
        self.shadow = _Shadow(
            projection(model=SHADOW.model, name=SHADOW_NAME), self.check
        )
        # A projection that overrides handle (a test's deliberate bug, a subclass)
        # is projected by its handle, batch by batch: the bulk load folds with the
        # projector's row functions and would bypass it.
        self.bulk = (
            BulkLoad(payouts, batch_size=batch_size)
            if is_postgres() and projection.handle is PayoutViewProjection.handle
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
            timed("index", SHADOW.index)
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
        SHADOW.create()
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

    def swap(self) -> None:
        """Lock the live projector out, project and check the last events, swap."""
        try:
            self._swap()
        except OperationalError as exc:  # a lock timeout, most likely
            raise RebuildError(f"the swap failed: {exc}") from exc
        SHADOW.analyze()

    def _swap(self) -> None:
        with transaction.atomic():
            limit_lock_waits(self.lock_timeout)
            live = DjangoTrackingRecorder(PayoutViewProjection.name).lock()
            stop = self.payouts.recorder.max_notification_id() or 0
            self._project(stop=stop)
            self.shadow.position = position_of(SHADOW_NAME)
            if self.shadow.position < live:
                raise RebuildError(
                    f"the shadow is at {self.shadow.position}, behind the live "
                    f"projection at {live}"
                )
            SHADOW.swap_in()
            Position.objects.filter(name=PayoutViewProjection.name).update(
                position=self.shadow.position
            )
            Position.objects.filter(name=SHADOW_NAME).delete()

    def _project(self, bar: Bar | None = None, *, stop: int | None = None) -> None:
        bar = bar or _NoBar()
        reached = self.shadow.position

        def advanced(_: int) -> None:
            # The bar counts positions (its total is the last one), not events.
            nonlocal reached
            bar.update(self.shadow.position - reached)
            reached = self.shadow.position

        try:
            drain(
                self.payouts,
                self.shadow,
                after_batch=advanced,
                batch_size=self.batch_size,
                stop=stop,
            )
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
        bar = progress("check", SHADOW.model.objects.count())
        checked = 0
        after: UUID | None = None
        try:
            while ids := self.store.stream_ids(
                beyond=after, limit=self.batch_size, until=position
            ):
                rows = SHADOW.model.objects.filter(id__lte=ids[-1])
                if after is not None:
                    rows = rows.filter(id__gt=after)
                self.compare(ids, position, {r["id"]: r for r in rows.values()})
                after = ids[-1]
                checked += len(ids)
                bar.update(len(ids))
            rest = SHADOW.model.objects.order_by("id")
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
    the replay into a table beside it; the check then compares the two tables in
    SQL, field by field, and counts the events read against the table."""

    def __init__(self, payouts: Payouts, *, batch_size: int) -> None:
        self.payouts = payouts
        self.batch_size = batch_size  # events per round trip of the read
        self.store = EventTable(payouts)
        self.replay = ReplayTable(SHADOW, COLUMNS)
        self.top = 0
        self.events = 0

    def load(self, top: int, bar: Bar, position_name: str) -> int:
        """Project every event up to notification `top` into the empty shadow and
        set its position to `top`, in one transaction; returns the events read.
        The replay is kept for `check`."""
        self.top = top
        try:
            with transaction.atomic():
                with self.replay.copying() as (rows, replay):
                    for stream in self._streams(top, bar):
                        row, expected = self._fold(stream)
                        if row is not None:
                            rows(row)
                        replay(expected)
                # With the rows, as catch_up would: a crash loses both or neither.
                Position.objects.update_or_create(
                    name=position_name, defaults={"position": top}
                )
        except BaseException:
            self.close()
            raise
        return self.events

    def close(self) -> None:
        self.replay.close()

    def _streams(self, top: int, bar: Bar) -> Iterator[list[tuple[Any, int]]]:
        """Every stream up to `top`, decoded, one at a time, in id order."""
        # Closed on the way out, whatever ends it: left to the garbage collector (a
        # traceback keeps it), the read would hold its lock on the event table.
        with contextlib.closing(
            self.store.in_stream_order(top, itersize=self.batch_size)
        ) as events:
            for _, stored in groupby(events, key=attrgetter("originator_id")):
                stream = [(self._decoded(n), n.id) for n in stored]
                self.events += len(stream)
                yield stream
                bar.update(len(stream))

    def _decoded(self, stored: Notification) -> Any:
        try:
            return self.payouts.mapper.to_domain_event(stored)
        except TamperedEvent as tampered:
            raise TamperedLedger(tampered) from None

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
            found = self.replay.first_difference(FIELDS)
            self.close()
            if found is not None:
                payout_id, got, want = found
                # None only where SQL and Python disagree (e.g. jsonb spacing)
                raise difference(payout_id, got, want) or Discrepancy(
                    payout_id, "differs from the replay"
                )
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
