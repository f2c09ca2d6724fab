"""Read access to the raw event table, by stream, for auditing: the library reads one
stream or the notification log, while an audit walks every stream in id order, in
batches, to run in constant memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import InterfaceError, Notification, OperationalError
from eventsourcing.utils import retry
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ledger.application import Payouts

_P = ParamSpec("_P")
_R = TypeVar("_R")
# Parameters of one query, in the driver's placeholders' order.
_Params = tuple[object, ...]


def _retried(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """As the library's own reads: a pooled connection that died (a database restart)
    fails once and is discarded; the retry takes a live one. (The library's `retry`
    is typed Any to Any; this keeps the signature of what it wraps.)"""
    wrapped: Callable[_P, _R] = retry(
        (InterfaceError, OperationalError), max_attempts=5, wait=0.2
    )(func)
    return wrapped


class EventTable:
    def __init__(self, payouts: Payouts) -> None:
        self.recorder = payouts.recorder
        # Both the Postgres and the SQLite recorder have these; the ApplicationRecorder
        # interface the application is typed with does not declare them.
        self.datastore = self.recorder.datastore  # type: ignore[attr-defined]
        self.postgres = type(self.datastore).__name__.startswith("Postgres")
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        if self.postgres:
            self.table: str = (
                sql.SQL("{}.{}")
                .format(sql.Identifier(self.datastore.schema), sql.Identifier(table))
                .as_string()
            )
            self.param = "%s"
            self.position = "notification_id"
        else:
            self.table = f'"{table}"'
            self.param = "?"
            self.position = "rowid"

    @_retried
    def _rows(self, query: str, params: _Params) -> list[tuple[object, ...]]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
        # psycopg connections of the library return dicts, sqlite3 returns Rows.
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]

    def _range(self, after: int | None, until: int | None) -> tuple[str, _Params]:
        clauses: list[str] = []
        params: list[int] = []
        if after is not None:
            clauses.append(f"{self.position} > {self.param}")
            params.append(after)
        if until is not None:
            clauses.append(f"{self.position} <= {self.param}")
            params.append(until)
        return "".join(f" AND {c}" for c in clauses), tuple(params)

    def count_streams(self, after: int | None = None, until: int | None = None) -> int:
        where, params = self._range(after, until)
        rows = cast(
            "list[tuple[int]]",
            self._rows(
                f"SELECT COUNT(DISTINCT originator_id) FROM {self.table} "
                f"WHERE 1=1{where}",
                params,
            ),
        )
        return int(rows[0][0])

    def count_events(self, after: int | None = None, until: int | None = None) -> int:
        where, params = self._range(after, until)
        rows = cast(
            "list[tuple[int]]",
            self._rows(f"SELECT COUNT(*) FROM {self.table} WHERE 1=1{where}", params),
        )
        return int(rows[0][0])

    def stream_ids(
        self,
        *,
        beyond: UUID | None,
        limit: int,
        after: int | None = None,
        until: int | None = None,
    ) -> list[UUID]:
        """The next `limit` stream ids in id order, optionally only streams with an
        event in the position range (after, until]."""
        where, params = self._range(after, until)
        if beyond is not None:
            where += f" AND originator_id > {self.param}"
            params = (*params, beyond if self.postgres else beyond.hex)
        rows = self._rows(
            f"SELECT DISTINCT originator_id FROM {self.table} WHERE 1=1{where} "
            f"ORDER BY originator_id LIMIT {int(limit)}",
            params,
        )
        return [r[0] if isinstance(r[0], UUID) else UUID(str(r[0])) for r in rows]

    def events_of(
        self, ids: Sequence[UUID], until: int | None = None
    ) -> list[Notification]:
        """Every stored event of these streams (up to position `until`), by stream and
        version."""
        if not ids:
            return []
        where, range_params = self._range(None, until)
        params: _Params
        if self.postgres:
            among, params = "= ANY(%s)", (list(ids),)
        else:
            # the SQLite recorder stores UUID.hex
            among, params = (
                f"IN ({','.join('?' * len(ids))})",
                tuple(i.hex for i in ids),
            )
        query = (
            f"SELECT {self.position}, originator_id, originator_version, topic, state "
            f"FROM {self.table} WHERE originator_id {among}{where} "
            "ORDER BY originator_id, originator_version"
        )
        params = (*params, *range_params)
        # Postgres gives a stream id as a UUID, SQLite as its hex string.
        rows = cast(
            "list[tuple[int, UUID | str, int, str, bytes]]", self._rows(query, params)
        )
        return [
            Notification(
                id=int(position),
                originator_id=ident if isinstance(ident, UUID) else UUID(str(ident)),
                originator_version=int(version),
                topic=str(topic),
                state=bytes(state),
            )
            for position, ident, version, topic, state in rows
        ]

    def unbound_copies(self, limit: int = 10) -> list[Notification]:
        """Events whose stored bytes equal those of an earlier event (the later row of
        each pair), among blobs not of the bound format (ledger.cipher.BOUND_MAGIC)."""
        head = (
            "substring(state from 1 for 4) <> '\\x524b4302'::bytea"
            if self.postgres
            else "substr(state, 1, 4) <> X'524B4302'"
        )
        query = (
            f"SELECT position, originator_id, originator_version, topic FROM ("
            f"SELECT {self.position} AS position, originator_id, originator_version, "
            f"topic, row_number() OVER (PARTITION BY state ORDER BY {self.position}) "
            f"AS nth FROM {self.table} WHERE {head}) AS ranked "
            f"WHERE nth > 1 ORDER BY position LIMIT {int(limit)}"
        )
        rows = cast("list[tuple[int, UUID | str, int, str]]", self._rows(query, ()))
        return [
            Notification(
                id=int(position),
                originator_id=ident if isinstance(ident, UUID) else UUID(str(ident)),
                originator_version=int(version),
                topic=str(topic),
                state=b"",
            )
            for position, ident, version, topic in rows
        ]

    def copies_of(self, state: bytes) -> int:
        """How many events are stored with exactly these bytes (a scan: for the rare
        unbound blobs of legacy streams only)."""
        rows = cast(
            "list[tuple[int]]",
            self._rows(
                f"SELECT COUNT(*) FROM {self.table} WHERE state = {self.param}",
                (state,),
            ),
        )
        return int(rows[0][0])
