"""The library's own ceiling on this machine: how many events a plain `eventsourcing`
Application appends per second on PostgreSQL, with no Django, no cipher, no HTTP, no
checks of ours: small aggregates of one event each, one `save()` per aggregate, from
1 and from 4 writer processes on a database of their own; and, for what batching
would give, ten aggregates per `save()` (one lock, one commit, one flush for ten).

Each insert takes the library's `LOCK TABLE ... IN EXCLUSIVE MODE`, so writers queue
on it: more writers add concurrency in Python, not in the table. Any figure of the
service above this one is not possible; how close it gets says what its own code
costs per write.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


class Probe(Aggregate):
    """One small event per aggregate (an amount and a short note)."""

    @event("Created")
    def __init__(self, amount: int, note: str) -> None:
        self.amount, self.note = amount, note


class ProbeApp(Application[Any]):
    name = "ceiling"


def store_env(database_url: str) -> dict[str, str]:
    parts = urlsplit(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_POOL_SIZE": "1",
    }


def _writer(
    database_url: str,
    seconds: float,
    go: Event,
    out: multiprocessing.Queue[Any],
    per_save: int,
) -> None:
    try:
        app = ProbeApp(env={**store_env(database_url), "CREATE_TABLE": "n"})
        app.save(Probe(amount=0, note="warm"))  # connect and prepare first
    except Exception as exc:  # the parent raises it, rather than waiting in vain
        out.put(repr(exc))
        return
    out.put("ready")
    go.wait()
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.save(*(Probe(amount=count, note="ceiling probe") for _ in range(per_save)))
        count += per_save
    out.put(count)
    app.close()


def appends_per_second(
    database_url: str, writers: int, seconds: float, per_save: int = 1
) -> float:
    """Events appended per second by `writers` processes together, each saving
    new one-event aggregates for `seconds`, `per_save` of them per `save()`."""
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    # Create the tables once, before writers race on the catalog.
    ProbeApp(env={**store_env(database_url), "CREATE_TABLE": "y"}).close()
    procs = [
        context.Process(target=_writer, args=(database_url, seconds, go, out, per_save))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    # Spawning, importing and connecting are not measured.
    for _ in procs:
        message = out.get(timeout=120)
        if message != "ready":
            for proc in procs:
                proc.terminate()
            raise RuntimeError(f"an append-ceiling writer failed: {message}")
    go.set()
    counts = [out.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join(30)
    return round(sum(counts) / seconds, 1)
