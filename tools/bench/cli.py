"""Orchestration of `make bench`: the baseline and the service side by side, in one
run, with the same load tool (wrk) and the same request bodies; options, phases,
the table and the JSON report."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import httpx
import psycopg
import redis
from psycopg import sql

from tools.bench import ceilings, report, wrk
from tools.bench.baseline import Baseline, BaselineError
from tools.bench.cpu import CpuMeter
from tools.bench.load import STOP, percentile
from tools.bench.rebuild import parse_summary
from tools.stack import ROOT, Stack, StackError

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS_DIR = ROOT / "bench-results"
# The seeded list databases' secrets: kept so that a cached database's encrypted
# events stay readable by the next run.
KEYS_DIR = RESULTS_DIR / "keys"
LIST_PATH = "/api/v1/payouts/?status=pending&ordering=-created_at&limit=50"
CREATE_PATH = "/api/v1/payouts/"
# Both sides accept this body: the baseline's recipient_details is free JSON, the
# service's must be a card (or bank account); the card is the gateway's test card
# that completes.
BODY = (
    '{"amount": "{amount}", "currency": "EUR", "recipient_details": '
    '{"type": "card", "number": "4242424242424242", "holder": "Bench Client"}, '
    '"description": "bench {n}"}'
)
SERVICE_TABLE, SERVICE_FINAL = (
    "projections_payoutview",
    ("completed", "failed", "cancelled"),
)
BASELINE_TABLE, BASELINE_FINAL = "payouts_payoutrequest", ("completed", "failed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description="The payout ledger beside the baseline, on PostgreSQL + Redis.",
    )
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="alternating rounds per figure (3)")
    add("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    add("--warmup", type=float, default=3.0, help="unmeasured wrk seconds first (3)")
    add("--connections", type=int, default=8, help="list, detail, e2e (8)")
    add("--create-connections", default="8,16", help="create figures at (8,16)")
    add("--list-rows", type=int, default=1_000_000, help="list database rows (1M)")
    add("--reseed", action="store_true", help="seed the list databases afresh")
    add("--seed-processes", type=int, default=2, help="parallel ledger seeders (2)")
    add(
        "--skip-seed",
        action="store_true",
        help="no list databases: skip list, detail, rebuild and read ceiling",
    )
    add("--payouts", type=int, default=2000, help="end-to-end payouts per round")
    add("--e2e-timeout", type=float, default=0.0, help="default max(60, payouts/5) s")
    add("--gateway-latency-ms", type=float, default=0.0, help="main e2e (0)")
    add("--slow-gateway-ms", type=float, default=100.0, help="second e2e (100)")
    add(
        "--scaling",
        default="",
        help="e.g. 1,2,4,8: one e2e round per worker concurrency (not by default)",
    )
    add("--ceiling-seconds", type=float, default=5.0, help="per ceiling probe (5)")
    add("--gunicorn-workers", type=int, default=2)
    add("--gunicorn-threads", type=int, default=8)
    add("--celery-concurrency", type=int, default=4)
    add("--baseline-dir", type=Path, default=ROOT.parent / "shared" / "baseline")
    add("--baseline-web-workers", type=int, default=4)
    add("--baseline-worker-concurrency", type=int, default=2)
    add("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    add(
        "--dbname",
        default="payouts_bench",
        help="prefix of every database of the bench (payouts_bench)",
    )
    add("--redis", default="redis://127.0.0.1:6379/9", help="the service's (/9)")
    add("--baseline-redis", default="redis://127.0.0.1:6379/8", help="(/8)")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service processes, e.g. "
        "EVENT_STORE_POOL_SIZE=8 (repeatable)",
    )
    add("--keep-db", action="store_true", help="keep the create/e2e databases")
    add("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
    try:
        args.create_connections = _ints(args.create_connections)
        args.scaling = _ints(args.scaling)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk.available():
        print(wrk.INSTALL_HINT, file=sys.stderr)
        return 1
    # Ctrl-C (even when started with SIGINT ignored), SIGTERM and SIGHUP all end the
    # bench through the `finally` below, which stops what it started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    logs = RESULTS_DIR / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    results: dict[str, Any] = {
        "started_at": _now(),
        "machine": machine(args),
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
    }
    began = time.perf_counter()
    run = Run(args, logs, results)
    print(
        f"cores: {results['machine']['cores']}  {results['machine']['cpu_model']}  "
        f"load {results['machine']['loadavg_at_start']}  logs: {logs}",
        flush=True,
    )
    try:
        run.bench()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the processes started here", file=sys.stderr)
        _write_partial(args.output, results, "interrupted")
        return 130
    except (StackError, BaselineError, RuntimeError, psycopg.Error) as exc:
        print(f"bench failed: {exc} (logs in {logs})", file=sys.stderr)
        _write_partial(args.output, results, f"failed: {exc}")
        return 1
    finally:
        STOP.set()
        run.cleanup()
    results["total_seconds"] = round(time.perf_counter() - began, 1)
    results["machine"]["loadavg_at_end"] = _loadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # The raw rounds first: a report that fails must not lose a half-hour's run.
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    summarize(results)
    print_report(results)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.output} (total {results['total_seconds']} s)")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    # Named, because on a shared machine the sender is not always the operator.
    print(f"\nreceived {signal.Signals(signum).name}", file=sys.stderr)
    raise KeyboardInterrupt


def _write_partial(output: Path, results: dict[str, Any], why: str) -> None:
    """The rounds measured so far, beside (never over) a complete report."""
    partial = output.with_name(output.stem + ".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(
        json.dumps({**results, "incomplete": why}, indent=2, default=str) + "\n"
    )
    print(f"rounds so far written to {partial}", file=sys.stderr)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return ""


def machine(args: argparse.Namespace) -> dict[str, Any]:
    cpuinfo = ""
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": _loadavg(),
    }
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(f"{args.postgres.rstrip('/')}/postgres") as conn,
    ):
        info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    with contextlib.suppress(redis.RedisError):
        info["redis"] = redis.Redis.from_url(args.redis).info("server")["redis_version"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        info["wrk"] = (out.stdout + out.stderr).split("Copyright")[0].strip()
    return info


def keys_for(dbname: str, *, fresh: bool) -> dict[str, str]:
    """The secrets of a service database's stacks (every Stack would make new ones;
    events encrypted under one cipher key are unreadable under another). Stored in
    bench-results/keys/, so a cached list database can be read by later runs."""
    path = KEYS_DIR / f"{dbname}.json"
    if path.exists() and not fresh:
        return dict(json.loads(path.read_text()))
    keys = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CIPHER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "IDEMPOTENCY_FINGERPRINT_KEY": secrets.token_urlsafe(32),
    }
    KEYS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keys))
    path.chmod(0o600)
    return keys


def fingerprint(keys: dict[str, str]) -> str:
    return hashlib.sha256(keys["CIPHER_KEYS"].encode()).hexdigest()[:16]


class Run:
    """One `make bench`: every process it starts is stopped by `cleanup()`."""

    def __init__(
        self, args: argparse.Namespace, logs: Path, results: dict[str, Any]
    ) -> None:
        self.args, self.logs, self.results = args, logs, results
        self.server = args.postgres.rstrip("/")
        self.stacks: list[Stack] = []
        self.baseline = Baseline(
            args.baseline_dir.resolve(),
            logs,
            postgres_url=self.server,
            redis_url=args.baseline_redis,
        )
        self.drop_after: list[str] = []
        self.rounds: dict[str, Any] = {}
        results["rounds"] = self.rounds

    # Processes and databases

    def stack(self, name: str, dbname: str, **env: str) -> Stack:
        args = self.args
        stack = Stack(
            self.logs / name,
            database_url=f"{self.server}/{dbname}",
            redis_url=args.redis,
            overrides={
                "GATEWAY_LATENCY_MS": str(args.gateway_latency_ms),
                "LOG_LEVEL": "WARNING",
                "API_THROTTLE_RATE": "1000000/s",
                "WEB_CONCURRENCY": str(args.gunicorn_workers),
                "WEB_THREADS": str(args.gunicorn_threads),
                "WORKER_CONCURRENCY": str(args.celery_concurrency),
                **dict(item.split("=", 1) for item in args.set),
                **env,
            },
        )
        self.stacks.append(stack)
        return stack

    def stop_stack(self, stack: Stack) -> None:
        stack.stop()
        if stack in self.stacks:
            self.stacks.remove(stack)

    def cleanup(self) -> None:
        for stack in reversed(self.stacks):
            with contextlib.suppress(Exception):
                stack.stop()
        self.stacks.clear()
        with contextlib.suppress(Exception):
            self.baseline.stop()
        if not self.args.keep_db:
            for dbname in self.drop_after:
                with (
                    contextlib.suppress(psycopg.Error),
                    psycopg.connect(f"{self.server}/postgres", autocommit=True) as conn,
                ):
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(dbname)
                        )
                    )

    # The run

    def bench(self) -> None:
        args = self.args
        if not args.skip_seed:
            self.list_phases()
        self.create_and_e2e_phases()
        step("ceilings: the library alone, on a database of its own")
        self.results["ceilings"] = {
            **self.results.get("ceilings", {}),
            **self.append_ceilings(),
        }

    # List and detail, over the seeded databases (web only: no dispatcher may see
    # their 20% pending payouts)

    def list_phases(self) -> None:
        args = self.args
        rows = args.list_rows
        service_db = f"{args.dbname}_list_{rows}"
        baseline_db = f"{args.dbname}_baseline_list_{rows}"
        seeding: dict[str, Any] = {}
        self.results["seeding"] = seeding

        keys = keys_for(service_db, fresh=False)
        stack = self.stack("list", service_db, **keys)
        started = time.perf_counter()
        seeding["service"] = self.ensure_service_list(stack, keys, rows)
        seeding["service"]["ensure_seconds"] = round(time.perf_counter() - started, 1)

        step(f"rebuild_projections over {service_db} (the rebuild figure)")
        started = time.perf_counter()
        output = stack.run(
            "manage.py", "rebuild_projections", "--batch-size", "2000", timeout=7200
        )
        line = next((x for x in output.splitlines() if x.startswith("rebuilt")), output)
        self.results["rebuild"] = {
            **parse_summary(line),
            "output": line.strip(),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        step(line.strip())
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f"ANALYZE {SERVICE_TABLE}")

        started = time.perf_counter()
        seeding["baseline"] = self.ensure_baseline_list(baseline_db, rows)
        seeding["baseline"]["ensure_seconds"] = round(time.perf_counter() - started, 1)

        step("decoded notification reads (the library reading the service's log)")
        self.results["ceilings"] = {
            "decoded_reads": [
                stack.run_json(
                    "-m", "tools.bench.django_side", "read-ceiling",
                    "--seconds", str(args.ceiling_seconds),
                )["read_ceiling"]
                for _ in range(args.rounds)
            ]
        }  # fmt: skip

        service_ids = [
            str(r[0])
            for r in stack.sql(
                f"SELECT id FROM {SERVICE_TABLE} ORDER BY random() LIMIT 1000"
            )
        ]
        baseline_ids = [
            str(r[0])
            for r in self.baseline.sql(
                baseline_db,
                f"SELECT id FROM {BASELINE_TABLE} ORDER BY random() LIMIT 1000",
            )
        ]
        step(f"service web ({args.gunicorn_workers}x{args.gunicorn_threads} gthread)")
        stack.start("web")
        prepared = stack.run_json(
            "-m", "tools.bench.django_side", "prepare", "--rows", "0"
        )
        seeding["service"]["by_status"] = prepared["facts"]["by_status"]
        service_headers = _service_headers(prepared["key"]["api_key"])
        step(f"baseline web (gunicorn -w {args.baseline_web_workers} -k sync)")
        self.baseline.start_web(baseline_db, args.baseline_web_workers)
        seeding["baseline"]["by_status"] = dict(
            self.baseline.sql(
                baseline_db,
                f"SELECT status, count(*) FROM {BASELINE_TABLE} GROUP BY status",
            )
        )

        conns = args.connections
        sides = {
            "baseline": (self.baseline.url, self.baseline.headers, baseline_ids),
            "service": (stack.web_url, service_headers, service_ids),
        }
        for key, connections, paths in (
            (f"list_{conns}", conns, lambda ids: (LIST_PATH,)),
            ("list_1", 1, lambda ids: (LIST_PATH,)),
            (
                f"detail_{conns}",
                conns,
                lambda ids: tuple(f"/api/v1/payouts/{i}/" for i in ids),
            ),
        ):
            self.alternate(
                key,
                {
                    side: (url, wrk.Load("GET", paths(ids), _accept(headers)))
                    for side, (url, headers, ids) in sides.items()
                },
                connections,
            )
        self.baseline.stop()
        self.stop_stack(stack)

    def ensure_service_list(
        self, stack: Stack, keys: dict[str, str], rows: int
    ) -> dict[str, Any]:
        """The service's list database: `rows` payouts as real events through the
        ledger application (LIST_MIX), reused when a complete one is there."""
        marker = self.baseline.database_comment(stack.dbname)
        wanted = {"rows": rows, "mix": "list", "keys": fingerprint(keys)}
        if (
            not self.args.reseed
            and marker
            and all(marker.get(k) == v for k, v in wanted.items())
        ):
            try:
                stack.run("manage.py", "migrate", "--check")
                step(f"cached {stack.dbname}: {rows} payouts, migrations current")
                return {"cached": True, **marker}
            except StackError:
                step(f"{stack.dbname}: migrations changed since it was seeded; reseed")
        keys.update(keys_for(stack.dbname, fresh=True))
        stack.env.update(keys)
        wanted["keys"] = fingerprint(keys)
        step(f"fresh {stack.dbname}; migrate; seed {rows} payouts through the ledger")
        stack.create_database()
        stack.run("manage.py", "migrate", "--noinput", timeout=600)
        started = time.perf_counter()
        procs = max(1, self.args.seed_processes)
        shares = [rows // procs + (1 if i < rows % procs else 0) for i in range(procs)]
        outcomes: list[dict[str, Any] | BaseException] = [{}] * procs

        def seed(slot: int) -> None:
            try:
                outcomes[slot] = stack.run_json(
                    "-m", "tools.bench.django_side", "seed", "--rows", str(shares[slot]),
                    "--rng-seed", str(1000 + slot), timeout=14400,
                )["seed"]  # fmt: skip
            except BaseException as exc:  # reported below, in the main thread
                outcomes[slot] = exc

        threads = [
            threading.Thread(target=seed, args=(i,), daemon=True) for i in range(procs)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise StackError(f"seeding failed: {outcome}")
        seconds = time.perf_counter() - started
        events = sum(o["events"] for o in outcomes)  # type: ignore[index]
        vacuum = stack.vacuum_analyze()
        marker = {
            **wanted,
            "events": events,
            "seed_seconds": round(seconds, 1),
            "seed_events_per_s": round(events / seconds, 1),
            "vacuum_seconds": round(vacuum, 1),
            "seeded_at": _now(),
        }
        self.baseline.set_comment(stack.dbname, marker)
        step(
            f"seeded {rows} payouts ({events} events) in {seconds:.0f}s with "
            f"{procs} processes ({events / seconds:.0f} events/s); VACUUM {vacuum:.0f}s"
        )
        return {"cached": False, **marker}

    def ensure_baseline_list(self, dbname: str, rows: int) -> dict[str, Any]:
        marker = self.baseline.database_comment(dbname)
        if (
            not self.args.reseed
            and marker
            and marker.get("rows") == rows
            and self.baseline.migrations_current(dbname)
            and self.baseline.sql(dbname, f"SELECT count(*) FROM {BASELINE_TABLE}")[0][
                0
            ]
            == rows
        ):
            step(f"cached {dbname}: {rows} rows")
            return {"cached": True, **marker}
        step(f"fresh {dbname}; migrate; seed.sql with n={rows}")
        self.baseline.create_database(dbname)
        seconds = self.baseline.seed(dbname, rows)
        marker = {"rows": rows, "seed_seconds": round(seconds, 1), "seeded_at": _now()}
        self.baseline.set_comment(dbname, marker)
        step(f"seeded the baseline in {seconds:.0f}s")
        return {"cached": False, **marker}

    # Create and end to end, on fresh databases

    def create_and_e2e_phases(self) -> None:
        args = self.args
        service_db, baseline_db = f"{args.dbname}_run", f"{args.dbname}_baseline_run"
        self.drop_after += [service_db, baseline_db]
        keys = keys_for(service_db, fresh=True)
        step(f"fresh {service_db} and {baseline_db}; migrate")
        stack = self.stack("run", service_db, **keys)
        stack.create_database()
        stack.run("manage.py", "migrate", "--noinput", timeout=600)
        self.baseline.flush_broker()
        self.baseline.create_database(baseline_db)
        stack.start("web")
        prepared = stack.run_json(
            "-m", "tools.bench.django_side", "prepare", "--rows", "0"
        )
        service_headers = _service_headers(prepared["key"]["api_key"])
        self.baseline.start_web(baseline_db, args.baseline_web_workers)
        loads = {
            "baseline": (self.baseline.url, _post_load(self.baseline.headers)),
            "service": (stack.web_url, _post_load(service_headers)),
        }
        # The web tiers only: both sides' payouts wait for a worker that is not
        # running (the baseline's tasks pile up in its Redis database).
        for connections in args.create_connections:
            self.alternate(f"create_{connections}", loads, connections)

        step("e2e: the baseline's table emptied, its queue flushed, its worker started")
        self.baseline.sql(baseline_db, f"TRUNCATE {BASELINE_TABLE}")
        self.baseline.flush_broker()
        self.baseline.start_worker(baseline_db, args.baseline_worker_concurrency)
        step("e2e: the create phase projected, the dispatcher moved past it")
        stack.run_json("-m", "tools.bench.django_side", "catch-up")
        step(
            f"gateway ({args.gateway_latency_ms:g} ms), worker (concurrency "
            f"{args.celery_concurrency}), followers"
        )
        stack.start("gateway", "worker", "followers")
        base_check = self._sql_of(self.baseline, baseline_db)
        serv_check = stack.sql
        self.rounds["e2e"] = {"baseline": [], "service": []}
        self.rounds["projection_lag"] = []
        for number in range(1, args.rounds + 1):
            for side in ("baseline", "service"):
                if side == "baseline":
                    outcome = self.e2e_round(
                        self.baseline.url, loads["baseline"][1], base_check,
                        BASELINE_TABLE, BASELINE_FINAL,
                    )  # fmt: skip
                else:
                    sampler = LagSampler(stack.web_url)
                    sampler.start()
                    try:
                        outcome = self.e2e_round(
                            stack.web_url, loads["service"][1], serv_check,
                            SERVICE_TABLE, SERVICE_FINAL, meter=CpuMeter(stack),
                        )  # fmt: skip
                    finally:
                        lag = sampler.stop()
                    self.rounds["projection_lag"].append(lag)
                    outcome["projection_lag"] = lag
                self.rounds["e2e"][side].append(outcome)
                step(f"e2e round {number} {side}: {_e2e_line(outcome)}")
        stack.check_alive()
        self.results["server_errors_logged"] = {
            name: stack.log_of(name).count(b'"level": "ERROR"')
            for name in ("web", "worker", "followers")
        }
        self.baseline.stop()
        self.stop_stack(stack)

        slow = args.slow_gateway_ms
        self.rounds["e2e_slow_gateway"] = self.service_e2e_rounds(
            f"run-gateway-{slow:g}ms",
            service_db,
            keys,
            args.rounds,
            GATEWAY_LATENCY_MS=str(slow),
        )
        if args.scaling:
            self.rounds["scaling"] = {
                str(k): self.service_e2e_rounds(
                    f"run-scaling-{k}", service_db, keys, 1, WORKER_CONCURRENCY=str(k)
                )
                for k in args.scaling
            }

    def service_e2e_rounds(
        self, name: str, dbname: str, keys: dict[str, str], rounds: int, **env: str
    ) -> list[dict[str, Any]]:
        """End-to-end rounds of the service alone, its stack started anew (as `make
        run` would, on the same database) with `env` changed."""
        stack = self.stack(name, dbname, **keys, **env)
        step(f"e2e, service only, {env}")
        stack.start("web", "gateway", "worker", "followers")
        prepared = stack.run_json(
            "-m", "tools.bench.django_side", "prepare", "--rows", "0"
        )
        load = _post_load(_service_headers(prepared["key"]["api_key"]))
        outcomes = []
        for number in range(1, rounds + 1):
            outcome = self.e2e_round(
                stack.web_url,
                load,
                stack.sql,
                SERVICE_TABLE,
                SERVICE_FINAL,
                meter=CpuMeter(stack),
            )
            outcomes.append(outcome)
            step(f"e2e {env} round {number}: {_e2e_line(outcome)}")
        stack.check_alive()
        self.stop_stack(stack)
        return outcomes

    @staticmethod
    def _sql_of(
        baseline: Baseline, dbname: str
    ) -> Callable[..., list[tuple[Any, ...]]]:
        return lambda query, *params: baseline.sql(dbname, query, *params)

    def e2e_round(
        self,
        url: str,
        load: wrk.Load,
        query: Callable[..., list[tuple[Any, ...]]],
        table: str,
        final: tuple[str, ...],
        *,
        meter: CpuMeter | None = None,
    ) -> dict[str, Any]:
        """`--payouts` creates from `--connections` wrk connections, as fast as the
        server takes them, then waiting until every payout created in this round is
        final in the table clients read (the service's projection, the baseline's
        only table). payouts/s: completed / (first request -> all final seen).
        With `meter`, the CPU each part spent per completed payout."""
        args = self.args
        n, threads = args.payouts, 2
        timeout = args.e2e_timeout or max(60.0, n / 5)
        if meter is not None:
            meter.start()
        since = time.time()
        running = wrk.start(
            url, load, connections=args.connections, seconds=timeout,
            threads=threads, limit_per_thread=math.ceil(n / threads),
        )  # fmt: skip
        counts = (
            f"SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)) FROM {table} "
            "WHERE created_at >= to_timestamp(%s)"
        )
        created = done = 0
        creates: dict[str, Any] | None = None
        stopped_at = math.inf
        all_final_at: float | None = None
        finished_at: float | None = None
        try:
            while time.time() - since < timeout and not STOP.is_set():
                created, done = query(counts, list(final), since)[0]
                if creates is None and created >= n:
                    creates = running.finish(interrupt=True)
                    stopped_at = time.time()
                if done < created:
                    all_final_at = None
                elif all_final_at is None:
                    all_final_at = time.time()
                # A create in flight when wrk stopped may commit a moment later:
                # the round ends only if nothing new turned up since.
                if all_final_at and time.time() - stopped_at > 0.5:
                    finished_at = all_final_at
                    break
                time.sleep(0.05)
        finally:
            if creates is None:
                running.kill()
        rows = query(
            f"SELECT status, extract(epoch FROM updated_at - created_at) FROM {table} "
            "WHERE created_at >= to_timestamp(%s)",
            since,
        )
        statuses: dict[str, int] = {}
        for status, _ in rows:
            statuses[status] = statuses.get(status, 0) + 1
        latencies = [float(s) for status, s in rows if status == "completed"]
        window = (finished_at or time.time()) - since
        cpu = (
            meter.stop(per=max(1, statuses.get("completed", 0)))
            if meter is not None
            else None
        )
        return {
            "cpu_ms_per_payout": cpu,
            "created": created,
            "statuses": statuses,
            "timed_out": finished_at is None,
            "seconds": round(window, 3),
            "payouts_per_s": round(statuses.get("completed", 0) / window, 1)
            if finished_at
            else None,
            "create_errors": (creates or {}).get("errors"),
            "create_rps": (creates or {}).get("rps"),
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
        }

    # Alternating wrk rounds

    def alternate(
        self, key: str, loads: dict[str, tuple[str, wrk.Load]], connections: int
    ) -> None:
        """Warm each side (not measured), then `--rounds` rounds of baseline run,
        service run: a drift of the shared machine touches both sides alike."""
        args = self.args
        threads = 1 if connections == 1 else 2
        for url, load in loads.values():
            wrk.run(
                url, load, connections=connections, seconds=args.warmup, threads=threads
            )
        out: dict[str, list[dict[str, Any]]] = {side: [] for side in loads}
        for number in range(1, args.rounds + 1):
            for side, (url, load) in loads.items():
                figures = wrk.run(
                    url, load, connections=connections, seconds=args.duration,
                    threads=threads,
                )  # fmt: skip
                out[side].append(figures)
                errors = f", errors {figures['errors']}" if figures["errors"] else ""
                step(
                    f"{key} round {number} {side}: {figures['rps']} req/s, "
                    f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms{errors}"
                )
        self.rounds[key] = out

    # Ceilings

    def append_ceilings(self) -> dict[str, Any]:
        dbname = f"{self.args.dbname}_ceiling"
        url = f"{self.server}/{dbname}"
        self.drop_after.append(dbname)
        with psycopg.connect(f"{self.server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        out: dict[str, list[float]] = {}
        probes = {
            "appends_1_writers": (1, 1),
            "appends_4_writers": (4, 1),
            "appends_1_writers_10_per_save": (1, 10),
        }
        for key, (writers, per_save) in probes.items():
            out[key] = [
                ceilings.appends_per_second(
                    url, writers, self.args.ceiling_seconds, per_save
                )
                for _ in range(self.args.rounds)
            ]
            step(
                f"raw eventsourcing appends, {writers} writers, {per_save} "
                f"aggregates per save(): {out[key]} events/s"
            )
        return out


class LagSampler:
    """Reads the service's own `projection_lag_seconds` from /metrics every 0.25 s
    (the time since the projection last reached the log's head, 0 when it is
    there)."""

    def __init__(self, web_url: str) -> None:
        self.web_url = web_url
        self.samples: list[float] = []
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        with httpx.Client(base_url=self.web_url, timeout=10) as client:
            while not self.halt.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    value = parse_metric(
                        client.get("/metrics").text, "projection_lag_seconds"
                    )
                    if value is not None:
                        self.samples.append(value)
                self.halt.wait(0.25)

    def stop(self) -> dict[str, Any]:
        self.halt.set()
        self.thread.join(15)
        return {
            "samples": len(self.samples),
            "p50_s": _round(percentile(self.samples, 50)),
            "p99_s": _round(percentile(self.samples, 99)),
            "max_s": _round(max(self.samples) if self.samples else None),
        }


def parse_metric(text: str, name: str) -> float | None:
    """The value of an unlabelled sample `name` in Prometheus text."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            return float(parts[1])
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _service_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _accept(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Accept": "application/json"}


def _post_load(headers: dict[str, str]) -> wrk.Load:
    return wrk.Load(
        "POST",
        (CREATE_PATH,),
        {**_accept(headers), "Content-Type": "application/json"},
        BODY,
    )


def _e2e_line(outcome: dict[str, Any]) -> str:
    lag = outcome.get("projection_lag")
    return (
        f"{outcome['payouts_per_s']} payouts/s, {outcome['statuses']}, "
        f"create->completed p50 {outcome['p50_ms']} ms p99 {outcome['p99_ms']} ms"
        + (f", projection lag p99 {lag['p99_s']} s" if lag else "")
        + (" (timed out)" if outcome["timed_out"] else "")
        + (
            ", CPU ms per payout "
            + ", ".join(f"{k} {v}" for k, v in outcome["cpu_ms_per_payout"].items())
            if outcome.get("cpu_ms_per_payout")
            else ""
        )
    )


# Report


# Overloaded so that the service's rounds, never None, give a list figure() takes.
@overload
def _of(rounds: list[dict[str, Any]], metric: str) -> list[float | None]: ...
@overload
def _of(rounds: None, metric: str) -> None: ...
def _of(rounds: list[dict[str, Any]] | None, metric: str) -> list[float | None] | None:
    return None if rounds is None else [r.get(metric) for r in rounds]


def summarize(results: dict[str, Any]) -> None:
    """The figures (medians of the rounds, ratios service/baseline) and the
    top-level keys of bench-results/latest.json."""
    rounds, config = results["rounds"], results["config"]
    figures: list[dict[str, Any]] = []

    def pair(key: str, label: str) -> None:
        if key not in rounds:
            return
        base, serv = rounds[key]["baseline"], rounds[key]["service"]
        figures.append(
            report.figure(f"{label} req/s", "", _of(base, "rps"), _of(serv, "rps"))
        )
        figures.append(
            report.figure(
                f"{label} p99", "ms", _of(base, "p99_ms"), _of(serv, "p99_ms")
            )
        )

    for c in config["create_connections"]:
        pair(f"create_{c}", f"create, {c} conns,")
    conns = config["connections"]
    rows = config["list_rows"]
    pair(f"list_{conns}", f"list {rows:,} rows, {conns} conns,")
    if "list_1" in rounds:
        base, serv = rounds["list_1"]["baseline"], rounds["list_1"]["service"]
        figures.append(
            report.figure(
                "list, 1 conn, p99", "ms", _of(base, "p99_ms"), _of(serv, "p99_ms")
            )
        )
    pair(f"detail_{conns}", f"detail, {conns} conns,")
    if "e2e" in rounds:
        base, serv = rounds["e2e"]["baseline"], rounds["e2e"]["service"]
        for metric, label, unit in (
            ("payouts_per_s", "e2e payouts/s", ""),
            ("p50_ms", "e2e create->completed p50", "ms"),
            ("p99_ms", "e2e create->completed p99", "ms"),
        ):
            figures.append(
                report.figure(label, unit, _of(base, metric), _of(serv, metric))
            )
    slow = rounds.get("e2e_slow_gateway")
    if slow:
        gw = config["slow_gateway_ms"]
        figures.append(
            report.figure(
                f"e2e payouts/s, gateway {gw:g} ms",
                "",
                None,
                _of(slow, "payouts_per_s"),
            )
        )
        figures.append(
            report.figure(
                f"e2e p99, gateway {gw:g} ms", "ms", None, _of(slow, "p99_ms")
            )
        )
    if rounds.get("projection_lag"):
        figures.append(
            report.figure(
                "projection lag p99 during e2e",
                "s",
                None,
                _of(rounds["projection_lag"], "p99_s"),
            )
        )
    if results.get("rebuild"):
        figures.append(
            report.figure(
                "rebuild_projections events/s",
                "",
                None,
                [results["rebuild"].get("events_per_s")],
            )
        )
    results["figures"] = figures

    def ratio_of(label_start: str) -> float | None:
        return next(
            (f["ratio"] for f in figures if f["label"].startswith(label_start)), None
        )

    def service_of(label_start: str) -> float | None:
        return next(
            (f["service"] for f in figures if f["label"].startswith(label_start)), None
        )

    results["create_ratio"] = ratio_of("create, 8 conns, req/s")
    results["create_16_ratio"] = ratio_of("create, 16 conns, req/s")
    results["list_1m_ratio"] = ratio_of(f"list {rows:,} rows, {conns} conns, req/s")
    results["detail_ratio"] = ratio_of(f"detail, {conns} conns, req/s")
    results["e2e_ratio"] = ratio_of("e2e payouts/s")
    results["e2e_latency_100ms_share"] = report.ratio(
        service_of("e2e payouts/s, gateway"), service_of("e2e payouts/s")
    )
    results["rebuild_events_per_s"] = (results.get("rebuild") or {}).get("events_per_s")
    results["projection_lag_p99_s"] = service_of("projection lag p99")
    ceil = results.get("ceilings") or {}
    results["ceilings_summary"] = {
        **{k: report.median(v) for k, v in ceil.items() if k.startswith("appends_")},
        "decoded_reads_per_s": report.median(
            [r["decoded_per_s"] for r in ceil.get("decoded_reads", [])]
        ),
    }
    if "scaling" in rounds:
        results["scaling"] = {
            k: report.median(_of(v, "payouts_per_s") or [])
            for k, v in rounds["scaling"].items()
        }
    service_rounds = (rounds.get("e2e") or {}).get("service") or []
    spent = [
        r["cpu_ms_per_payout"] for r in service_rounds if r.get("cpu_ms_per_payout")
    ]
    if spent:
        results["e2e_cpu_ms_per_payout"] = {
            part: report.median([s.get(part, 0.0) for s in spent])
            for part in sorted(
                {p for s in spent for p in s}, key=lambda p: p == "total"
            )
        }


def print_report(results: dict[str, Any]) -> None:
    m, c = results["machine"], results["config"]
    print()
    print(
        f"payout ledger vs baseline  {results['started_at']}  {m['cores']} cores "
        f"({m['cpu_model']})  PostgreSQL {m.get('postgresql')}  Redis {m.get('redis')}"
    )
    print(
        f"service: gunicorn {c['gunicorn_workers']}x{c['gunicorn_threads']} gthread, "
        f"celery x{c['celery_concurrency']}; baseline: gunicorn -w "
        f"{c['baseline_web_workers']} sync, celery -c {c['baseline_worker_concurrency']}"
        f"; wrk, {c['rounds']} rounds of {c['duration']:g}s, medians"
    )
    print()
    print(report.table(results["figures"]))
    print()
    summary = results["ceilings_summary"]
    print("ceilings (the library alone, same machine, same run):")
    for key, value in summary.items():
        print(f"  {key.replace('_', ' ')}: {value} /s")
    if results.get("e2e_cpu_ms_per_payout"):
        print(
            "CPU per completed payout, service e2e at 0 ms (ms, medians): "
            + ", ".join(f"{k} {v}" for k, v in results["e2e_cpu_ms_per_payout"].items())
        )
    if results.get("scaling"):
        print("scaling (e2e payouts/s by worker concurrency):")
        for k, v in results["scaling"].items():
            print(f"  {k}: {v}")
    for key in ("create_ratio", "create_16_ratio", "list_1m_ratio", "detail_ratio",
                "e2e_ratio", "e2e_latency_100ms_share", "rebuild_events_per_s"):  # fmt: skip
        print(f"{key} = {results.get(key)}")
