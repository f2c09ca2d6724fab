"""The long-running loop of a log follower: wake fast, hold a single-instance lock,
survive database restarts, never skip."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import psycopg
from django.conf import settings
from django.db import close_old_connections, connections

from projections.runner import catch_up

if TYPE_CHECKING:
    from ledger.application import Payouts
    from projections.runner import Follower

logger = logging.getLogger(__name__)


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


class _PostgresSignals:
    """LISTEN for the event store's NOTIFY, and hold an advisory lock naming the follower.

    Both live on one dedicated connection: if it dies, the lock goes with it, and the
    loop reconnects and re-acquires before applying anything else.
    """

    def __init__(self, name: str, channel: str) -> None:
        self.key = advisory_key(name)
        self.channel = channel
        self.conn: psycopg.Connection | None = None

    def acquire(self, stop: threading.Event) -> bool:
        self.conn = direct_connection()
        while not stop.is_set():
            row = self.conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (self.key,)
            ).fetchone()
            if row and row[0]:
                self.conn.execute(
                    psycopg.sql.SQL("LISTEN {}").format(
                        psycopg.sql.Identifier(self.channel)
                    )
                )
                return True
            stop.wait(1.0)
        return False

    def wait(self, timeout: float) -> None:
        assert self.conn is not None
        # Raises OperationalError when the connection died: the loop then reconnects.
        for _ in self.conn.notifies(timeout=timeout, stop_after=1):
            pass

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


class _FileSignals:
    """Embedded mode: an exclusive file lock, and a short poll for new events."""

    def __init__(self, name: str, poll: float = 0.05) -> None:
        self.path = Path(settings.RUN_DIR) / f"{name}.lock"
        self.poll = poll
        self.handle: TextIO | None = None

    def acquire(self, stop: threading.Event) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("w")
        while not stop.is_set():
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                stop.wait(1.0)
                continue
            self.handle = handle
            return True
        handle.close()
        return False

    def wait(self, timeout: float) -> None:
        time.sleep(min(self.poll, timeout))

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def follow(
    payouts: Payouts,
    follower: Follower,
    stop: threading.Event,
    *,
    batch_size: int = 500,
    idle_wait: float = 1.0,
) -> None:
    """Run one follower until `stop` is set. Errors are logged and retried with
    backoff; the position only moves inside a committed batch, so nothing is lost."""
    # channel_name: an attribute of the PostgreSQL recorder only, not declared by the
    # ApplicationRecorder interface the application is typed with.
    signals = (
        _PostgresSignals(follower.name, payouts.recorder.channel_name)  # type: ignore[attr-defined]
        if settings.IS_POSTGRES
        else _FileSignals(follower.name)
    )
    backoff = 0.5
    while not stop.is_set():
        try:
            if not signals.acquire(stop):
                break
            logger.info("%s following the event log", follower.name)
            while not stop.is_set():
                applied = catch_up(payouts, follower, batch_size=batch_size)
                if applied < batch_size:
                    signals.wait(idle_wait)
                backoff = 0.5
        except Exception:
            logger.exception(
                "%s stopped on an error; retrying in %.1fs", follower.name, backoff
            )
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            signals.release()
            close_old_connections()
            connections["default"].close()
