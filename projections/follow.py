"""The long-running loop of a log follower: wake fast, hold a single-instance lock,
survive database restarts, never skip."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from django.db import close_old_connections, connections
from psycopg import sql

from projections.database import NamedLock

# webhooks/sender.py imports these two from here.
from projections.runner import catch_up

if TYPE_CHECKING:
    import threading

    from eventsourcing.persistence import ApplicationRecorder

    from ledger.application import Payouts
    from projections.runner import Follower

logger = logging.getLogger(__name__)


class _Signals:
    """The follower's single-instance lock, and how it hears of new events: on
    PostgreSQL, LISTEN for the event store's NOTIFY on the lock's own session (if it
    dies, the lock goes with it, and the loop reconnects and re-acquires before
    applying anything else); in embedded mode, a short poll."""

    def __init__(
        self, name: str, recorder: ApplicationRecorder, poll: float = 0.05
    ) -> None:
        self.lock = NamedLock(name)
        self.recorder = recorder
        self.poll = poll

    def acquire(self, stop: threading.Event) -> bool:
        while not stop.is_set():
            if self.lock.try_acquire():
                if self.lock.session is not None:
                    # channel_name: the PostgreSQL recorder's, not declared by the
                    # ApplicationRecorder interface.
                    channel = self.recorder.channel_name  # type: ignore[attr-defined]
                    self.lock.session.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(channel))
                    )
                return True
            stop.wait(1.0)
        return False

    def wait(self, timeout: float) -> None:
        if self.lock.session is None:
            time.sleep(min(self.poll, timeout))
            return
        # Raises OperationalError when the session died: the loop then reconnects.
        for _ in self.lock.session.notifies(timeout=timeout, stop_after=1):
            pass

    def release(self) -> None:
        self.lock.release()


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
    signals = _Signals(follower.name, payouts.recorder)
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
