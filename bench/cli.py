"""Orchestration of `make bench`: options, phases, table and JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.load import STOP, latency_summary, new_client, run_load
from tools.stack import ROOT, Stack, StackError

RESULTS_DIR = ROOT / "bench-results"
TERMINAL = ("completed", "failed", "cancelled")
E2E_CARD = "4242424242424242"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the payout ledger on PostgreSQL + Redis + gunicorn.",
    )
    add = parser.add_argument
    add("--payouts", type=int, default=500, help="e2e payouts (default 500)")
    add("--list-rows", type=int, default=100_000, help="payouts seeded (100000)")
    add("--creates", type=int, default=2000, help="POSTs in the create phase (2000)")
    add(
        "--create-seconds",
        type=float,
        default=0.0,
        help="instead of --creates: run the create phase for this long",
    )
    add("--clients", type=int, default=16, help="concurrent clients (16)")
    add("--list-clients", type=int, default=4, help="clients in the list phase (4)")
    add("--list-requests", type=int, default=300, help="requests per list query")
    add(
        "--skip-seed",
        action="store_true",
        help="seed nothing: the list phase then reads only what exists (nothing)",
    )
    add("--gunicorn-workers", type=int, default=2)
    add("--gunicorn-threads", type=int, default=8)
    add("--celery-concurrency", type=int, default=4)
    add(
        "--e2e-rate",
        type=float,
        default=0.0,
        help="create e2e payouts at this rate (payouts/s); default: as fast as possible",
    )
    add("--e2e-timeout", type=float, default=0.0, help="default max(60, payouts/2) s")
    add("--gateway-latency-ms", type=float, default=0.0)
    add("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    add("--dbname", default="payouts_bench")
    add("--redis", default="redis://127.0.0.1:6379/9")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service processes, e.g. "
        "EVENT_STORE_POOL_SIZE=8 (repeatable)",
    )
    add("--keep-db", action="store_true", help="leave payouts_bench for inspection")
    add("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    if args.skip_seed:
        args.list_rows = 0
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C (even when started with SIGINT ignored), SIGTERM and SIGHUP all end the
    # bench through the `finally` below, which stops what it started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    logs = RESULTS_DIR / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    stack = Stack(
        logs,
        database_url=f"{args.postgres.rstrip('/')}/{args.dbname}",
        redis_url=args.redis,
        overrides={
            "GATEWAY_LATENCY_MS": str(args.gateway_latency_ms),
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_RATE": "1000000/s",
            "WEB_CONCURRENCY": str(args.gunicorn_workers),
            "WEB_THREADS": str(args.gunicorn_threads),
            "WORKER_CONCURRENCY": str(args.celery_concurrency),
            **dict(item.split("=", 1) for item in args.set),
        },
    )
    results: dict[str, Any] = {
        "started_at": _now(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
    }
    began = time.perf_counter()
    print(f"cores: {os.cpu_count()}   logs: {logs}", flush=True)
    try:
        bench(stack, args, results)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the processes started here", file=sys.stderr)
        return 130
    except StackError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        STOP.set()
        stack.stop()
        if not args.keep_db:
            stack.drop_database()
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.output} (total {results['total_seconds']} s)")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bench(stack: Stack, args: argparse.Namespace, results: dict[str, Any]) -> None:
    step(f"fresh database {args.dbname} and Redis {args.redis}; migrate")
    stack.create_database()
    stack.run("manage.py", "migrate", "--noinput", timeout=300)

    step(f"API key; seeding {args.list_rows} payouts through the ledger application")
    prepared = stack.run_json(
        "-m", "bench.django_side", "prepare", "--rows", str(args.list_rows)
    )
    api_key = prepared["key"]["api_key"]
    facts = prepared["facts"]
    if "seed" in prepared:
        seed, projection = prepared["seed"], prepared["projection"]
        results["seed"] = {
            **seed,
            "events_per_s": round(seed["events"] / seed["seconds"], 1),
            "projection_seconds": projection["seconds"],
            "projection_events_per_s": round(
                projection["events"] / projection["seconds"], 1
            ),
            "by_status": facts["by_status"],
            "by_currency": facts["by_currency"],
        }
        step(
            f"seeded {seed['rows']} payouts ({seed['events']} events) in "
            f"{seed['seconds']:.1f}s, projected in {projection['seconds']:.1f}s: "
            f"{facts['by_status']}"
        )

    vacuum = stack.vacuum_analyze()
    results.setdefault("seed", {})["vacuum_analyze_seconds"] = round(vacuum, 2)
    step(f"VACUUM ANALYZE in {vacuum:.1f}s (as autovacuum would after a bulk load)")

    step(f"gunicorn {args.gunicorn_workers} workers x {args.gunicorn_threads} threads")
    stack.start("web")

    results["list"] = list_phase(stack, args, api_key, facts)
    results["create"] = create_phase(stack, args, api_key)

    step("projecting the create phase; the dispatcher skips every payout so far")
    caught_up = stack.run_json("-m", "bench.django_side", "catch-up")
    results["rows_before_e2e"] = caught_up["facts"]["rows"]

    step(
        f"gateway, Celery worker (concurrency {args.celery_concurrency}), run_followers"
    )
    stack.start("gateway", "worker", "followers")
    results["e2e"] = e2e_phase(stack, args, api_key)
    stack.check_alive()
    results["server_errors_logged"] = {
        name: stack.log_of(name).count(b'"level": "ERROR"')
        for name in ("web", "worker", "followers")
    }


# Phases


def list_queries(facts: dict[str, Any]) -> dict[str, dict[str, str]]:
    queries = {
        "status+ordering": {
            "status": "completed",
            "ordering": "-amount",
            "limit": "50",
        },
        "currency+created_after": {
            "currency": "EUR",
            "created_after": facts.get("created_after") or "2000-01-01T00:00:00Z",
            "limit": "50",
        },
        "multi-status+ordering": {
            "status": "pending,processing",
            "ordering": "-amount",
            "limit": "50",
        },
        "default": {"limit": "50"},
    }
    return queries


def list_phase(
    stack: Stack, args: argparse.Namespace, api_key: str, facts: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": facts["rows"], "clients": args.list_clients}
    for name, params in list_queries(facts).items():
        path = "/api/v1/payouts/?" + urlencode(params)
        # Warm every server thread with this query first (not measured).
        run_load(
            clients=args.list_clients,
            total=args.gunicorn_workers * args.gunicorn_threads * 2,
            base_url=stack.web_url,
            api_key=api_key,
            request=lambda client, i, path=path: client.get(path),
        )
        run = run_load(
            clients=args.list_clients,
            total=args.list_requests,
            base_url=stack.web_url,
            api_key=api_key,
            request=lambda client, i, path=path: client.get(path),
            keep_body=lambda r: len(r.json()["results"]),
        )
        summary = run.summary()
        summary["query"] = path.split("?", 1)[1]
        summary["results_per_page"] = run.ok[0].body if run.ok else None
        out[name] = summary
        step(
            f"list {name}: p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
            f"{summary['rps']} req/s"
        )
    out["cursor_pages"] = _cursor_walk(stack, api_key, args)
    return out


def _cursor_walk(
    stack: Stack, api_key: str, args: argparse.Namespace, pages: int = 20
) -> dict[str, Any]:
    """Follow `next` 20 pages deep through status=completed ordered by -amount."""
    latencies: list[float] = []
    with new_client(stack.web_url, api_key) as client:
        for _ in range(3):
            url: str | None = (
                "/api/v1/payouts/?status=completed&ordering=-amount&limit=50"
            )
            for _ in range(pages):
                if not url:
                    break
                started = time.perf_counter()
                response = client.get(url)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                url = response.json()["next"]
    return {"requests": len(latencies), **latency_summary(latencies)}


def create_body(index: int, card: str = E2E_CARD) -> bytes:
    return json.dumps(
        {
            "amount": f"{100 + index % 9900}.{index % 100:02d}",
            "currency": "EUR" if index % 3 else "USD",
            "recipient_details": {"type": "card", "number": card, "holder": "Bench"},
            "description": f"bench {index}",
        }
    ).encode()


def _post(client: httpx.Client, index: int) -> httpx.Response:
    return client.post(
        "/api/v1/payouts/",
        content=create_body(index),
        headers={"Content-Type": "application/json"},
    )


def create_phase(
    stack: Stack, args: argparse.Namespace, api_key: str
) -> dict[str, Any]:
    # Warm every server thread (not measured): lazy imports, the ledger's pool.
    run_load(
        clients=args.clients,
        total=args.clients * 4,
        base_url=stack.web_url,
        api_key=api_key,
        request=lambda client, i: _post(client, 900_000 + i),
    )
    if args.create_seconds:
        # Measure the rate over a short probe, then size the run to the duration.
        probe = run_load(
            clients=args.clients,
            total=args.clients * 10,
            base_url=stack.web_url,
            api_key=api_key,
            request=_post,
        )
        rate = len(probe.ok) / probe.seconds if probe.seconds else 100.0
        total = max(args.clients, int(rate * args.create_seconds))
    else:
        total = args.creates
    step(f"create: {total} POSTs from {args.clients} clients (gunicorn only)")
    run = run_load(
        clients=args.clients,
        total=total,
        base_url=stack.web_url,
        api_key=api_key,
        request=_post,
    )
    summary = {"clients": args.clients, **run.summary()}
    step(
        f"create: {summary['rps']} req/s, p50 {summary['p50_ms']} ms, "
        f"p99 {summary['p99_ms']} ms, errors {summary['errors']}"
    )
    return summary


def e2e_phase(stack: Stack, args: argparse.Namespace, api_key: str) -> dict[str, Any]:
    n = args.payouts
    timeout = args.e2e_timeout or max(60.0, n / 2)
    step(f"e2e: {n} payouts with card {E2E_CARD[:6]}..., polling the list until final")
    seen: dict[str, tuple[str, float, dict[str, Any]]] = {}
    created: dict[str, float] = {}
    creates_done = threading.Event()
    since = datetime.now(UTC).isoformat()
    poller = threading.Thread(
        target=_poll_list,
        args=(stack, api_key, since, seen, created, creates_done, timeout),
        daemon=True,
        name="poller",
    )
    first_post = time.time()
    poller.start()
    run = run_load(
        clients=args.clients,
        total=n,
        base_url=stack.web_url,
        api_key=api_key,
        request=lambda client, i: client.post(
            "/api/v1/payouts/",
            content=create_body(1_000_000 + i),
            headers={"Content-Type": "application/json"},
        ),
        keep_body=lambda r: r.json()["id"],
        pace=args.e2e_rate,
    )
    for sample in run.ok:
        created[sample.body] = sample.started
    creates_done.set()
    creates_end = max((s.started + s.latency for s in run.samples), default=first_post)
    poller.join()
    finished = [p for p in seen.values() if p[0] in TERMINAL]
    completed = [p for p in finished if p[0] == "completed"]
    # Server-side: Created and last-event timestamps of the projection row.
    event_latencies = [
        (_ts(row["updated_at"]) - _ts(row["created_at"])) for _, _, row in completed
    ]
    # Client-side: from just before the POST to the poll that first saw it final.
    observed = [
        seen_at - created[pid]
        for pid, (status, seen_at, _) in seen.items()
        if status == "completed" and pid in created
    ]
    last_completed = max((_ts(row["updated_at"]) for _, _, row in completed), default=0)
    window = last_completed - first_post if completed else 0.0
    statuses: dict[str, int] = {}
    for pid in created:
        status = seen.get(pid, ("not seen",))[0]
        statuses[status] = statuses.get(status, 0) + 1
    summary = {
        "payouts": n,
        "created": len(created),
        "create_errors": run.errors,
        "create_seconds": round(creates_end - first_post, 3),
        "create_rps": round(len(created) / (creates_end - first_post), 1),
        "statuses": statuses,
        "completed": len(completed),
        "seconds_to_last_completed": round(window, 3),
        "payouts_per_s": round(len(completed) / window, 1) if window else None,
        "event_latency": latency_summary(event_latencies),
        "observed_latency": latency_summary(observed),
        "timed_out": len(finished) < len(created),
    }
    step(
        f"e2e: {summary['completed']}/{n} completed, {summary['payouts_per_s']} "
        f"payouts/s, create->completed p50 {summary['event_latency']['p50_ms']} ms "
        f"p99 {summary['event_latency']['p99_ms']} ms; statuses {statuses}"
    )
    return summary


def _poll_list(
    stack: Stack,
    api_key: str,
    since: str,
    seen: dict[str, tuple[str, float, dict[str, Any]]],
    created: dict[str, float],
    creates_done: threading.Event,
    timeout: float,
    interval: float = 0.25,
) -> None:
    """Page through the payouts created since the e2e start, every `interval`, and
    note when each one is first seen in a final status. Stops when every created
    payout is final, or after `timeout`."""
    deadline = time.monotonic() + timeout
    base = "/api/v1/payouts/?" + urlencode(
        {"created_after": since, "ordering": "created_at", "limit": "200"}
    )
    with new_client(stack.web_url, api_key) as client:
        while time.monotonic() < deadline and not STOP.is_set():
            url: str | None = base
            try:
                while url:
                    response = client.get(url)
                    response.raise_for_status()
                    page = response.json()
                    now = time.time()
                    for row in page["results"]:
                        previous = seen.get(row["id"])
                        if previous is None or (
                            previous[0] not in TERMINAL and row["status"] != previous[0]
                        ):
                            seen[row["id"]] = (row["status"], now, row)
                    url = page["next"]
            except httpx.HTTPError as exc:
                if STOP.is_set():
                    return
                print(f"poll failed ({exc!r}); retrying", file=sys.stderr)
            if creates_done.is_set() and all(
                seen.get(pid, ("",))[0] in TERMINAL for pid in created
            ):
                return
            time.sleep(interval)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# Report


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def print_table(results: dict[str, Any]) -> None:
    machine, config = results["machine"], results["config"]
    print()
    print(
        f"payout ledger bench  {results['started_at']}  cores={machine['cpu_count']}  "
        f"gunicorn {config['gunicorn_workers']}x{config['gunicorn_threads']} gthread  "
        f"celery x{config['celery_concurrency']}"
    )
    rows: list[tuple[str, str, str, str, str, str]] = [
        ("benchmark", "n", "rate", "p50", "p99", "notes")
    ]
    if (seed := results.get("seed")) and "rows" in seed:
        rows.append(
            (
                "seed (ledger save)",
                str(seed["rows"]),
                _fmt(seed["events_per_s"], " ev/s"),
                "",
                "",
                f"{seed['events']} events {seed['seconds']:.1f}s; "
                f"projector {seed['projection_events_per_s']:,.0f} ev/s",
            )
        )
    if lst := results.get("list"):
        for name in list_queries({}):
            q = lst.get(name)
            if q:
                rows.append(
                    (
                        f"list {name}",
                        str(q["ok"]),
                        _fmt(q["rps"], " req/s"),
                        _fmt(q["p50_ms"], " ms"),
                        _fmt(q["p99_ms"], " ms"),
                        f"{lst['rows']} rows, {lst['clients']} clients"
                        + (f", errors {q['errors']}" if q["errors"] else ""),
                    )
                )
        cur = lst["cursor_pages"]
        rows.append(
            (
                "list cursor pages 1-20",
                str(cur["requests"]),
                "",
                _fmt(cur["p50_ms"], " ms"),
                _fmt(cur["p99_ms"], " ms"),
                "1 client, following next",
            )
        )
    if create := results.get("create"):
        rows.append(
            (
                "create (POST)",
                str(create["ok"]),
                _fmt(create["rps"], " req/s"),
                _fmt(create["p50_ms"], " ms"),
                _fmt(create["p99_ms"], " ms"),
                f"{create['clients']} clients, API key"
                + (f", errors {create['errors']}" if create["errors"] else ""),
            )
        )
    if e2e := results.get("e2e"):
        lat, obs = e2e["event_latency"], e2e["observed_latency"]
        rows.append(
            (
                "e2e create->completed",
                f"{e2e['completed']}/{e2e['payouts']}",
                _fmt(e2e["payouts_per_s"], " payouts/s"),
                _fmt(lat["p50_ms"], " ms"),
                _fmt(lat["p99_ms"], " ms"),
                f"event times; seen by client p50 {_fmt(obs['p50_ms'], ' ms')} "
                f"p99 {_fmt(obs['p99_ms'], ' ms')}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            row[i].rjust(widths[i]) for i in range(1, 5)
        ]
        print("  ".join([*cells, row[5]]))
    if e2e and e2e.get("timed_out"):
        print(f"e2e: not every payout reached a final status: {e2e['statuses']}")
