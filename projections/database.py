"""Everything projections/ does that PostgreSQL and embedded SQLite do differently,
in one place: which database this is, locks between processes, the shadow table a
rebuild fills and swaps in, COPY and bulk writes, and raw reads of the event table.
Callers ask for the operation; the few that choose a path of their own (the bulk
load of a rebuild, the lag heartbeat) ask is_postgres(), here.

The event store and Django's tables share one database (both follow DATABASE_URL:
settings/base.py, settings/eventstore.py), so one answer serves both.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar, cast
from uuid import UUID

import psycopg
from django.apps.registry import Apps
from django.conf import settings
from django.db import connection, connections, models
from eventsourcing.persistence import InterfaceError, Notification, OperationalError
from eventsourcing.utils import retry
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence

    from ledger.application import Payouts

    # Writes one row, given as field values by column name.
    RowWriter = Callable[[dict[str, Any]], None]
    # A row in one table only (None for the other) or in both, differing.
    Mismatch = tuple[UUID, dict[str, Any] | None, dict[str, Any] | None]

_P = ParamSpec("_P")
_R = TypeVar("_R")
# Parameters of one query, in the driver's placeholders' order.
_Params = tuple[object, ...]


def is_postgres() -> bool:
    # Read at each call, not at import: tests switch it with the settings fixture.
    return bool(settings.IS_POSTGRES)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


# Locks between processes


def advisory_key(name: str) -> int:
    """The bigint of a PostgreSQL advisory lock named `name` (stable across processes)."""
    return int.from_bytes(
        hashlib.sha256(name.encode()).digest()[:8], "big", signed=True
    )


def direct_connection() -> psycopg.Connection:
    """An autocommit connection to Django's database of its own: session locks taken
    on it live exactly as long as it does, whatever Django does with its connections."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


class NamedLock:
    """Held by one process at a time: a PostgreSQL advisory lock on a session of its
    own, or an exclusive file lock in embedded mode. Either ends with the session or
    the file, so a holder that dies, however it dies, frees it."""

    def __init__(self, name: str) -> None:
        self.name = name
        # PostgreSQL: the session that holds (or asks for) the lock; its holder may
        # use it for more (a follower LISTENs on it), and learns of its death there.
        self.session: psycopg.Connection | None = None
        self._file: TextIO | None = None

    def try_acquire(self) -> bool:
        """Takes the lock if it is free, never waits; asked again on the same
        session or file."""
        if is_postgres():
            if self.session is None:
                self.session = direct_connection()
            row = self.session.execute(
                "SELECT pg_try_advisory_lock(%s)", (advisory_key(self.name),)
            ).fetchone()
            return bool(row and row[0])
        if self._file is None:
            path = Path(settings.RUN_DIR) / f"{self.name}.lock"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def held(self) -> bool:
        """True while held; raises when the lock's session is gone (the lock with it)."""
        if self.session is not None:
            self.session.execute("SELECT 1")
        return True

    def release(self) -> None:
        """Closing the session or the file is what frees the lock."""
        session, self.session = self.session, None
        file, self._file = self._file, None
        try:
            if session is not None:
                session.close()
        finally:
            if file is not None:
                file.close()


def limit_lock_waits(seconds: float) -> None:
    """PostgreSQL: no lock of the current transaction waits longer than this (SQLite
    waits for its write lock as its connection's `timeout` says)."""
    if not is_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"]
        )


# Bulk writes


def update_newer(
    model: type[models.Model],
    changes: Mapping[Any, Mapping[str, Any]],
    *,
    fields: Sequence[str],
    optional: Sequence[str] = (),
) -> None:
    """Each row named in `changes` (by primary key) updated with its change, unless
    its `version` is already as new: the guard that lets a replay change nothing.
    Every change holds `fields`, version among them, and those of `optional` only
    when it has them. PostgreSQL: one statement for them all; SQLite, one a row."""
    if not is_postgres():
        for key, change in changes.items():
            model._default_manager.filter(pk=key, version__lt=change["version"]).update(
                **change
            )
        return
    if not changes:
        return
    by_name = {f.name: f for f in model._meta.concrete_fields}
    pk = model._meta.pk
    assert pk is not None, "a model has a primary key"

    def column(name: str) -> str:
        return quote(str(by_name[name].column))

    def array(name: str) -> str:
        return f"%s::{by_name[name].cast_db_type(connection)}[]"

    sets = [f"{column(f)} = v.{quote(f)}" for f in fields] + [
        f"{column(f)} = CASE WHEN v.{quote('has_' + f)} THEN v.{quote(f)} "
        f"ELSE t.{column(f)} END"
        for f in optional
    ]
    arrays = [array(f) for f in (pk.name, *fields)]
    arrays += [f"{array(f)}, %s::boolean[]" for f in optional]
    aliases = [quote(f) for f in (pk.name, *fields)]
    aliases += [f"{quote(f)}, {quote('has_' + f)}" for f in optional]
    items = list(changes.items())
    params: list[list[Any]] = [[key for key, _ in items]]
    params += [[c[f] for _, c in items] for f in fields]
    for f in optional:
        params += [[c.get(f) for _, c in items], [f in c for _, c in items]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} AS t SET {', '.join(sets)} "
            f"FROM unnest({', '.join(arrays)}) AS v({', '.join(aliases)}) "
            f"WHERE t.{column(pk.name)} = v.{quote(pk.name)} "
            f"AND t.{column('version')} < v.{quote('version')}",
            params,
        )


# The shadow table of a rebuild


class ShadowTable:
    """A table like `live`'s that a rebuild fills while the live one serves, then
    swaps in under the live table's name, with the key and index names its
    migrations know.

    PostgreSQL: `CREATE TABLE ... (LIKE live INCLUDING ALL EXCLUDING INDEXES)` plus its
    primary key; the secondary indexes are built after the load under temporary
    names and renamed in the swap. SQLite: made by Django's schema editor; it cannot
    rename an index, so the swap creates them under their own names."""

    def __init__(self, live: type[models.Model], suffix: str = "_rebuild") -> None:
        self.live = live
        self.live_table = live._meta.db_table
        self.suffix = suffix
        self.table = f"{self.live_table}{suffix}"
        self.model = _model_on(live, self.table)
        key = live._meta.pk
        assert key is not None, "a model has a primary key"
        self.key_column = str(key.column)
        self.json_columns = {
            f.column for f in live._meta.local_fields if isinstance(f, models.JSONField)
        }

    def create(self) -> None:
        """Empty and without secondary indexes; a leftover of an aborted run is
        dropped first."""
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quote(self.table)}")
            if is_postgres():
                cursor.execute(
                    f"CREATE TABLE {quote(self.table)} (LIKE {quote(self.live_table)} "
                    "INCLUDING ALL EXCLUDING INDEXES)"
                )
                cursor.execute(
                    f"ALTER TABLE {quote(self.table)} ADD CONSTRAINT "
                    f"{quote(self._primary_key)} PRIMARY KEY ({quote(self.key_column)})"
                )
                return
        with connection.schema_editor() as editor:
            editor.create_model(self.model)

    def index(self) -> None:
        """PostgreSQL: the secondary indexes, built once after the load (faster than
        maintaining them row by row), then VACUUM (ANALYZE), since autovacuum may be
        off. SQLite creates its indexes in the swap."""
        if not is_postgres():
            return
        editor = connection.schema_editor()  # only renders SQL here
        with connection.cursor() as cursor:
            for index in self.live._meta.indexes:
                temporary = index.clone()
                temporary.name = self._temporary(index.name)
                cursor.execute(str(temporary.create_sql(self.model, editor)))
            cursor.execute(f"VACUUM (ANALYZE) {quote(self.table)}")

    def swap_in(self) -> None:
        """Inside the caller's transaction: the live table dropped, the shadow
        renamed to its name, its key and indexes to the names the migrations know."""
        with connection.cursor() as cursor:
            if is_postgres():
                self._swap_postgres(cursor)
            else:
                self._swap_sqlite(cursor)

    def _swap_postgres(self, cursor: Any) -> None:
        constraints = connection.introspection.get_constraints(cursor, self.live_table)
        live_key = next(name for name, c in constraints.items() if c["primary_key"])
        cursor.execute(f"DROP TABLE {quote(self.live_table)}")
        cursor.execute(
            f"ALTER TABLE {quote(self.table)} RENAME TO {quote(self.live_table)}"
        )
        cursor.execute(
            f"ALTER TABLE {quote(self.live_table)} RENAME CONSTRAINT "
            f"{quote(self._primary_key)} TO {quote(live_key)}"
        )
        for index in self.live._meta.indexes:
            cursor.execute(
                f"ALTER INDEX {quote(self._temporary(index.name))} "
                f"RENAME TO {quote(index.name)}"
            )

    def _swap_sqlite(self, cursor: Any) -> None:
        cursor.execute(f"DROP TABLE {quote(self.live_table)}")
        cursor.execute(
            f"ALTER TABLE {quote(self.table)} RENAME TO {quote(self.live_table)}"
        )
        editor = connection.schema_editor()  # only renders SQL here
        for index in self.live._meta.indexes:
            cursor.execute(str(index.create_sql(self.live, editor)))

    def analyze(self) -> None:
        """After the swap: SQLite's planner statistics for the new table (PostgreSQL
        gathered them when it built the indexes)."""
        if is_postgres():
            return
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quote(self.live_table)}")

    @property
    def _primary_key(self) -> str:
        return f"{self.table}_pkey"

    def _temporary(self, index_name: str) -> str:
        return f"{index_name}{self.suffix}"


def _model_on(live: type[models.Model], table: str) -> Any:
    """`live`'s fields on another table, in a registry of its own: neither the
    migrations nor the admin ever see it."""
    attrs: dict[str, Any] = {f.name: f.clone() for f in live._meta.local_fields}
    attrs["__module__"] = __name__
    attrs["Meta"] = type(
        "Meta",
        (),
        {
            "app_label": live._meta.app_label,
            "db_table": table,
            "managed": False,
            "apps": Apps(),
        },
    )
    return type(f"{live.__name__}Shadow", (models.Model,), attrs)


class ReplayTable:
    """PostgreSQL: a temporary table like the shadow, for a replay written beside the
    shadow's rows and compared with them in SQL. It lives on a session of its own,
    since one connection runs one COPY at a time and Django's runs the shadow's;
    closing the session drops it."""

    def __init__(self, shadow: ShadowTable, columns: Sequence[str]) -> None:
        self.shadow = shadow
        self.columns = columns
        self.table = f"{shadow.table}_expected"
        self.session: psycopg.Connection | None = None

    @contextlib.contextmanager
    def copying(self) -> Iterator[tuple[RowWriter, RowWriter]]:
        """Writers of rows by COPY: into the shadow, on Django's connection and so in
        the caller's transaction, and into this table."""
        self.session = direct_connection()
        self.session.execute(
            f"CREATE TEMPORARY TABLE {quote(self.table)} "
            f"(LIKE {quote(self.shadow.table)})"
        )
        names = ", ".join(quote(c) for c in self.columns)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(  # psycopg's own cursor, for COPY
                f"COPY {quote(self.shadow.table)} ({names}) FROM STDIN"
            ) as rows,
            self.session.cursor() as replay_cursor,
            replay_cursor.copy(
                f"COPY {quote(self.table)} ({names}) FROM STDIN"
            ) as replay,
        ):
            yield (
                lambda row: rows.write_row(self._values(row)),
                lambda row: replay.write_row(self._values(row)),
            )

    def first_difference(self, fields: Sequence[str]) -> Mismatch | None:
        """The first row, by id, that is in one table only or differs in `fields`:
        its id, and its `fields` in the shadow and here (None: no such row)."""
        assert self.session is not None, "compare what was copied"
        differs = " OR ".join(
            f"s.{quote(f)} IS DISTINCT FROM e.{quote(f)}" for f in fields
        )
        pick = ", ".join(f"s.{quote(f)}, e.{quote(f)}" for f in fields)
        found = self.session.execute(
            f"SELECT s.id, e.id, {pick} FROM {quote(self.shadow.table)} s "
            f"FULL JOIN {quote(self.table)} e ON s.id = e.id "
            f"WHERE s.id IS NULL OR e.id IS NULL OR {differs} "
            "ORDER BY coalesce(s.id, e.id) LIMIT 1"
        ).fetchone()
        if found is None:
            return None
        got_id, want_id, *values = found
        got = dict(zip(fields, values[0::2], strict=True)) if got_id else None
        want = dict(zip(fields, values[1::2], strict=True)) if want_id else None
        return got_id or want_id, got, want

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def _values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            json.dumps(row[c]) if c in self.shadow.json_columns else row.get(c)
            for c in self.columns
        )


# Raw reads of the event table


def _retried(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """As the library's own reads: a pooled connection that died (a database restart)
    fails once and is discarded; the retry takes a live one. (The library's `retry`
    is typed Any to Any; this keeps the signature of what it wraps.)"""
    wrapped: Callable[_P, _R] = retry(
        (InterfaceError, OperationalError), max_attempts=5, wait=0.2
    )(func)
    return wrapped


class EventTable:
    """The event store's table read by stream: the library reads one stream or the
    notification log, while an audit or a rebuild walks every stream in id order, in
    batches or in one streamed read, to run in constant memory."""

    def __init__(self, payouts: Payouts) -> None:
        self.recorder = payouts.recorder
        # Both the Postgres and the SQLite recorder have these; the ApplicationRecorder
        # interface the application is typed with does not declare them.
        self.datastore = self.recorder.datastore  # type: ignore[attr-defined]
        self.postgres = is_postgres()
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
        return [_notification(*row) for row in self._rows(query, params)]

    def in_stream_order(
        self, until: int, *, itersize: int
    ) -> Generator[Notification, None, None]:
        """PostgreSQL: every event up to position `until`, by stream and version (the
        primary key's order), in one read streamed `itersize` rows a round trip by a
        server-side cursor on a session of its own."""
        query = (
            f"SELECT {self.position}, originator_id, originator_version, topic, state "
            f"FROM {self.table} WHERE {self.position} <= %s "
            "ORDER BY originator_id, originator_version"
        )
        with (
            contextlib.closing(direct_connection()) as session,
            session.transaction(),
            session.cursor(name="events_in_stream_order") as cursor,
        ):
            cursor.itersize = itersize
            cursor.execute(query, (until,))
            for row in cursor:
                yield _notification(*row)

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
        return [_notification(*row) for row in self._rows(query, ())]

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


def _notification(
    position: Any, ident: Any, version: Any, topic: Any, state: Any = b""
) -> Notification:
    """A row of the event table; PostgreSQL gives a stream id as a UUID, SQLite as
    its hex string."""
    return Notification(
        id=int(position),
        originator_id=ident if isinstance(ident, UUID) else UUID(str(ident)),
        originator_version=int(version),
        topic=str(topic),
        state=bytes(state),
    )
