"""The services the tests run against, and what tests read back from them: positions
of the projectors and the dispatcher, the projected rows, the event store's end."""

from __future__ import annotations

import os
import sqlite3
from io import StringIO
from typing import TYPE_CHECKING, Any

import psycopg
from django.conf import settings
from django.core.management import CommandError, call_command

from projections.models import LedgerCheckpoint, PayoutView, Position
from projections.projectors import PayoutViewProjection
from projections.runner import drain
from workers.dispatcher import PayoutDispatcher

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from celery.result import EagerResult

    from ledger.application import Payouts

    Deliver = Callable[[UUID, Any], EagerResult]
    """The `deliver` fixture of tests/faults: (payout id, gateway) -> the task's result."""

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

EVERY_PROCESS = frozenset(
    {"gateway", "web", "worker", "followers", "webhooks", "checkpointer", "beat"}
)
"""The processes of the table in deploy/processes.py: what `make run` starts."""


def service_connection() -> psycopg.Connection:
    """A connection of its own to the test database, with the service's role (what an
    intruder with the service's credentials, or another process, would hold)."""
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        autocommit=True,
    )


def wipe_event_store() -> None:
    """Events are written on the library's own connections, outside the test's
    transaction, so they are removed by hand to keep tests independent."""
    store = settings.EVENT_STORE
    if store["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        with service_connection() as conn:
            conn.execute(f"TRUNCATE {store['POSTGRES_SCHEMA']}.payouts_events")
    else:
        with sqlite3.connect(store["SQLITE_DBNAME"]) as conn:
            conn.execute("DELETE FROM stored_events")


def last_notification_id(ledger: Payouts) -> int:
    return ledger.recorder.max_notification_id() or 0


# The payout view projection


def projection_position() -> int:
    found = Position.objects.filter(name=PayoutViewProjection.name)
    return found.values_list("position", flat=True).first() or 0


def view_rows() -> list[dict[str, Any]]:
    return list(PayoutView.objects.order_by("id").values())


# The dispatcher


def dispatch(ledger: Payouts) -> int:
    """Enqueue what the dispatcher has not yet enqueued (what its process does)."""
    return drain(ledger, PayoutDispatcher())


def dispatcher_position() -> int:
    found = Position.objects.filter(name=PayoutDispatcher.name)
    return found.values_list("position", flat=True).first() or 0


# What an intruder, an auditor or an operator does from outside the service


def as_intruder(query: str, *params: Any, **named: Any) -> list[tuple[Any, ...]]:
    """SQL run on a connection of its own with the service's role, its rows (if it
    returns any). EVENTS and CHECKPOINTS stand for the event table and the checkpoint
    table; parameters are positional (%s) or named (%(name)s)."""
    query = query.replace(
        "EVENTS", f"{settings.EVENT_STORE_SCHEMA}.payouts_events"
    ).replace("CHECKPOINTS", LedgerCheckpoint._meta.db_table)
    with service_connection() as conn:
        cursor = conn.execute(query, named or params)
        return cursor.fetchall() if cursor.description else []


def run_command(command: str, *args: str) -> tuple[int, str]:
    """A management command's exit code, and what it wrote to stdout followed by the
    error it failed with, if it did."""
    out = StringIO()
    try:
        call_command(command, *args, stdout=out)
    except CommandError as failed:
        return failed.returncode, f"{out.getvalue()}{failed}"
    return 0, out.getvalue()
