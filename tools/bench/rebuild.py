"""Benchmark of `manage.py rebuild_projections` on PostgreSQL, under read load.

    .venv/bin/python -m tools.bench.rebuild                  # 100,000 payouts, ~300,000 events
    .venv/bin/python -m tools.bench.rebuild --rows 20000 --keep-db

On a private database (`payouts_rebuild_bench`, dropped and recreated): migrate, seed
payouts through the ledger application (bench.django_side.seed, with nearly every
payout moved on to a final status: about three events each), project them with the
real projector, VACUUM ANALYZE, start gunicorn; then run the rebuild while API
clients keep listing payouts, and compare a checksum of the whole table (every
column of every row, in id order) and its index names before and after the swap.

Prints a table and writes bench-results/rebuild.json. Exits 1 when a list request
failed, the tables differ or the rebuild failed. Never a test: no timing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from tools.bench.load import Sample, latency_summary, new_client
from tools.stack import ROOT, Stack, StackError

RESULTS = ROOT / "bench-results"
# Nearly every payout reaches a final status: 1 + 2 events for most, 1 + 1 for a few.
REBUILD_MIX = (
    ("completed", 0.80),
    ("failed", 0.15),
    ("cancelled", 0.03),
    ("processing", 0.02),
)
CHECKSUM = (
    "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.id)) "
    "FROM projections_payoutview t"
)
INDEXES = (
    "SELECT indexname FROM pg_indexes "
    "WHERE tablename = 'projections_payoutview' ORDER BY indexname"
)
LISTS = (
    {"limit": "50"},
    {"status": "completed", "ordering": "-amount", "limit": "50"},
    {"currency": "EUR", "ordering": "-created_at", "limit": "50"},
    {"status": "pending,processing", "ordering": "updated_at", "limit": "50"},
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.rebuild")
    add = parser.add_argument
    add("--rows", type=int, default=100_000, help="payouts seeded (100000)")
    add("--seed-batch", type=int, default=1000, help="aggregates per ledger save")
    add("--batch-size", type=int, default=2000, help="rebuild_projections batch")
    add("--clients", type=int, default=2, help="API clients listing in a loop (2)")
    add("--gunicorn-workers", type=int, default=2)
    add("--gunicorn-threads", type=int, default=4)
    add("--settle", type=float, default=3.0, help="seconds of reads before/after")
    add("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    add("--dbname", default="payouts_rebuild_bench")
    add("--redis", default="redis://127.0.0.1:6379/9")
    add("--keep-db", action="store_true", help="keep the database afterwards")
    add("--output", default=str(RESULTS / "rebuild.json"))
    return parser.parse_args(argv)


def step(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["django-prepare"]:
        return django_prepare(argv[1:])
    if argv[:1] == ["django-read"]:
        return django_read()
    args = parse_args(argv)
    logs = RESULTS / "logs-rebuild"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        logs,
        database_url=f"{args.postgres.rstrip('/')}/{args.dbname}",
        redis_url=args.redis,
        overrides={
            "WEB_CONCURRENCY": str(args.gunicorn_workers),
            "WEB_THREADS": str(args.gunicorn_threads),
        },
    )
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "config": vars(args),
    }
    try:
        ok = bench(stack, args, results)
    except (StackError, psycopg.Error) as exc:
        print(f"bench failed: {exc} (logs in {logs})", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        if not args.keep_db:
            stack.drop_database()
    print_table(results)
    with open(args.output, "w") as out:
        out.write(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.output}")
    return 0 if ok else 1


def bench(stack: Stack, args: argparse.Namespace, results: dict[str, Any]) -> bool:
    step(f"fresh database {args.dbname}; migrate")
    stack.create_database()
    stack.run("manage.py", "migrate", "--noinput", timeout=300)

    step(f"seeding {args.rows} payouts through the ledger, then projecting them")
    prepared = stack.run_json(
        "-m", "tools.bench.rebuild", "django-prepare", "--rows", str(args.rows),
        "--batch", str(args.seed_batch),
    )  # fmt: skip
    results["seed"] = prepared["seed"]
    results["projection"] = prepared["projection"]
    step(
        f"seeded {prepared['seed']['rows']} payouts, {prepared['seed']['events']} "
        f"events in {prepared['seed']['seconds']:.1f}s; projected incrementally in "
        f"{prepared['projection']['seconds']:.1f}s"
    )
    stack.vacuum_analyze()
    before = {"checksum": stack.sql(CHECKSUM)[0], "indexes": stack.sql(INDEXES)}

    step(
        f"gunicorn {args.gunicorn_workers}x{args.gunicorn_threads}; {args.clients} list clients"
    )
    stack.start("web")
    reader = Reader(stack.web_url, prepared["api_key"], args.clients)
    reader.start()
    time.sleep(args.settle)

    step("manage.py rebuild_projections")
    started = time.time()
    try:
        output = stack.run(
            "manage.py", "rebuild_projections", "--batch-size", str(args.batch_size)
        )
        rebuilt = True
    except StackError as exc:
        output, rebuilt = str(exc), False
    finished = time.time()
    time.sleep(args.settle)
    reader.stop()

    after = {"checksum": stack.sql(CHECKSUM)[0], "indexes": stack.sql(INDEXES)}
    step("the library's decoded read rate (select_notifications + mapper)")
    results["decoded_read"] = stack.run_json("-m", "tools.bench.rebuild", "django-read")
    lines = output.strip().splitlines()
    summary = next((x for x in lines if x.startswith("rebuilt")), output.strip())
    phases = next((x for x in lines if x.startswith("phases:")), "")
    results["rebuild"] = {
        "ok": rebuilt,
        "output": summary,
        "phases": phases.removeprefix("phases: "),
        "wall_seconds": round(finished - started, 2),
        **parse_summary(summary),
    }
    results["reads"] = {
        phase: reader.summary(lo, hi)
        for phase, (lo, hi) in {
            "before": (0.0, started),
            "during": (started, finished),
            "after": (finished, float("inf")),
        }.items()
    }
    results["same_table"] = before["checksum"] == after["checksum"]
    results["same_indexes"] = before["indexes"] == after["indexes"]
    results["checksum"] = {"before": before["checksum"], "after": after["checksum"]}
    errors = sum(len(r["errors"]) for r in results["reads"].values())
    return rebuilt and not errors and results["same_table"] and results["same_indexes"]


class Reader:
    """API clients listing payouts in a loop (cycling through filters and orderings)
    until stopped; every sample is kept with its wall-clock start."""

    def __init__(self, base_url: str, api_key: str, clients: int) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.halt = threading.Event()
        self.samples: list[list[Sample]] = [[] for _ in range(clients)]
        self.threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True)
            for i in range(clients)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.halt.set()
        for thread in self.threads:
            thread.join(60)

    def _loop(self, slot: int) -> None:
        out = self.samples[slot]
        with new_client(self.base_url, self.api_key, timeout=30) as client:
            index = slot
            while not self.halt.is_set():
                path = "/api/v1/payouts/?" + urlencode(LISTS[index % len(LISTS)])
                wall, began = time.time(), time.perf_counter()
                try:
                    response = client.get(path)
                    status = response.status_code
                    rows = len(response.json()["results"]) if status == 200 else 0
                except (httpx.HTTPError, ValueError, KeyError):
                    status, rows = 0, 0
                if status == 200 and rows == 0 and index % len(LISTS) == 0:
                    status = -1  # the unfiltered list is never empty here
                out.append(Sample(index, wall, time.perf_counter() - began, status))
                index += 1

    def summary(self, lo: float, hi: float) -> dict[str, Any]:
        chosen = [s for chunk in self.samples for s in chunk if lo <= s.started < hi]
        errors: dict[str, int] = {}
        for s in chosen:
            if s.status != 200:
                key = {0: "transport", -1: "empty"}.get(s.status, str(s.status))
                errors[key] = errors.get(key, 0) + 1
        return {
            "requests": len(chosen),
            "errors": errors,
            **latency_summary([s.latency for s in chosen if s.status == 200]),
        }


def parse_summary(line: str) -> dict[str, Any]:
    """`rebuilt the payout view: E events, P payouts, S.Ss, R events/s (position N)`"""
    try:
        body = line.split(": ", 1)[1]
        events, payouts, seconds, rate = (p.strip() for p in body.split(",")[:4])
        return {
            "events": int(events.split()[0]),
            "payouts": int(payouts.split()[0]),
            "seconds": float(seconds.rstrip("s")),
            "events_per_s": float(rate.split()[0]),
        }
    except (IndexError, ValueError):
        return {}


def print_table(results: dict[str, Any]) -> None:
    rebuild = results.get("rebuild", {})
    print()
    print(f"{'rebuild':<22}{rebuild.get('output', '')}")
    print(f"{'  wall (command)':<22}{rebuild.get('wall_seconds')} s")
    print(f"{'  events/s':<22}{rebuild.get('events_per_s')}")
    print(f"{'  phases':<22}{rebuild.get('phases')}")
    for phase, reads in results.get("reads", {}).items():
        print(
            f"{'reads ' + phase:<22}{reads['requests']} requests, errors "
            f"{reads['errors'] or 'none'}, p50 {reads['p50_ms']} ms, "
            f"p99 {reads['p99_ms']} ms, max {reads['max_ms']} ms"
        )
    read = results.get("decoded_read", {})
    print(
        f"{'decoded read':<22}{read.get('events')} events in {read.get('seconds')} s, "
        f"{read.get('events_per_s')} events/s (rebuild / read: "
        f"{_ratio(rebuild.get('events_per_s'), read.get('events_per_s'))})"
    )
    print(f"{'same table (md5)':<22}{results.get('same_table')}")
    print(f"{'same index names':<22}{results.get('same_indexes')}")


# The Django side, run in a subprocess with the bench environment.


def django_prepare(argv: list[str]) -> int:
    from tools.bench import django_side

    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.rebuild django-prepare"
    )
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    django_side._setup_django()
    key = django_side.issue_key("bench")
    seeded = django_side.seed(args.rows, args.batch, 42, mix=REBUILD_MIX)
    projected = django_side.project(batch_size=args.batch)
    print(
        json.dumps(
            {"api_key": key["api_key"], "seed": seeded, "projection": projected},
            default=str,
        )
    )
    return 0


def _ratio(rebuild: float | None, read: float | None) -> str:
    return f"{rebuild / read:.2f}" if rebuild and read else "n/a"


def django_read(batch: int = 1000) -> int:
    """What the rebuild is measured against: every notification read through the
    library's recorder, `batch` at a time, and decoded by the ledger's mapper."""
    from tools.bench import django_side

    django_side._setup_django()
    from ledger.apps import get_payouts

    payouts = get_payouts()
    started, events, after = time.perf_counter(), 0, 0
    while notifications := payouts.recorder.select_notifications(
        start=after, limit=batch, inclusive_of_start=False
    ):
        for notification in notifications:
            payouts.mapper.to_domain_event(notification)
        events += len(notifications)
        after = notifications[-1].id
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "events": events,
                "batch": batch,
                "seconds": round(seconds, 2),
                "events_per_s": round(events / seconds) if seconds else 0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
