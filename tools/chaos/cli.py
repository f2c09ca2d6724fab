"""`make chaos`: load, faults, recovery, then the money-safety invariants.

Runs the stack as `make run` does (tools/stack.py: the process table under
supervisord) on a fresh PostgreSQL database and a Redis database of its own, reached
through a proxy the harness can cut. The supervisor, not the harness, restarts what
the faults kill. The seed
decides the load and the fault schedule; a failing run is replayed with `--seed`
(process timing, and so the exact interleaving, is not deterministic).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis

from tools.chaos.check import (
    STATUS_AFTER,
    Result,
    Snapshot,
    check,
    check_webhooks,
    settled,
    snapshot,
    verify_ledger,
)
from tools.chaos.faults import (
    Injector,
    ensure_postgres_running,
    failpoint_crashes,
    schedule,
)
from tools.chaos.load import Load, expected_outcome, plan
from tools.chaos.proxy import TcpProxy
from tools.stack import BIN, ROOT, Stack, free_port
from tools.webhook_receiver import ReceiverProcess
from workers.gateway.fakeserver import DEGRADED_HOLD, HOLD

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
DEFAULT_FAILPOINTS = "after_processing_started:0.01,after_gateway_call:0.01"
# Redis databases other runs of this project use (CI tests 0, bench 9, e2e 13).
TAKEN_REDIS_DBS = {0, 9, 13}
KEEP_LOGS = 10  # runs whose process logs stay in .run/chaos/
# The fake gateway's longest hold of a request (HOLD, DEGRADED_HOLD), and a second.
LONGEST_HOLD = max([*HOLD.values(), DEGRADED_HOLD]) + 1


def _server(url: str | None) -> str | None:
    """The server part of a URL that may name a database: scheme://user@host:port."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


# Options the replay line does not repeat: this machine's servers and database,
# --no-pg-restart (parse_args folds it into --pg-restarts), and tuning it has never
# carried. Every other option is repeated, so a new one is replayed unless listed here.
NOT_REPLAYED = frozenset(
    {
        "postgres",
        "redis",
        "redis_db",
        "keep_db",
        "no_pg_restart",
    }
)
# Options whose unset value means "the seed chooses": the replay leaves them unset.
SEED_CHOOSES = frozenset({"redis_outage_mode", "gateway_latency_ms"})
# In the replay line the seed, which names the run, comes first and the failpoints,
# a long list, last; the rest in the help's order.
REPLAY_RANK = {"seed": 0, "failpoints": 2}


def build_parser() -> tuple[argparse.ArgumentParser, list[argparse.Action]]:
    """The options, and each as its action, for `replay_command` to read back."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.chaos",
        description="Money safety under faults: load, kill -9, broker loss, a "
        "PostgreSQL restart, gateway faults; then check the invariants.",
    )
    actions: list[argparse.Action] = []

    def add(flag: str, **kwargs: Any) -> None:
        actions.append(parser.add_argument(flag, **kwargs))

    add("--payouts", type=int, default=1000, help="creates to send (1000)")
    add("--rate", type=float, default=8.0, help="creates per second (8)")
    add("--clients", type=int, default=4, help="concurrent API clients (4)")
    add("--worker-kills", type=int, default=10, help="kill -9 of the worker (10)")
    add("--broker-flushes", type=int, default=1, help="FLUSHDB of the broker (1)")
    add(
        "--redis-outages",
        type=int,
        default=1,
        help="Redis unreachable for 3-6 s through the proxy (1)",
    )
    add(
        "--redis-outage-mode",
        choices=("cut", "stall"),
        default="",
        help="cut: connections reset; stall: nothing forwarded (default: by seed)",
    )
    add("--pg-restarts", type=int, default=1, help="PostgreSQL restarts (1)")
    add("--no-pg-restart", action="store_true", help="never restart PostgreSQL")
    add("--follower-kills", type=int, default=2, help="kill -9 of run_followers (2)")
    add("--gateway-windows", type=int, default=1, help="gateway fault windows (1)")
    add("--webhook-kills", type=int, default=1, help="kill -9 of run_webhooks (1)")
    add(
        "--receiver-outages",
        type=int,
        default=1,
        help="the webhook receiver killed for 3-8 s (1)",
    )
    add(
        "--receiver-fail-first",
        type=int,
        default=3,
        help="the receiver answers 500 to its first N requests (3)",
    )
    add(
        "--recovery-seconds",
        type=float,
        default=60.0,
        help="deadline after the last fault for every payout to be final (60)",
    )
    add("--seed", type=int, default=None, help="replay a run (default: random)")
    add("--failpoints", default=DEFAULT_FAILPOINTS, help="worker crash points")
    add("--gateway-latency-ms", type=float, default=None, help="default: 5-20")
    add("--worker-concurrency", type=int, default=2, help="Celery pool size (2)")
    add("--stuck-after", type=int, default=20, help="STUCK_PAYOUT_AFTER (20)")
    add("--max-retries", type=int, default=3, help="PAYOUT_MAX_RETRIES (3)")
    add("--sweep-interval", type=float, default=5.0, help="SWEEP_INTERVAL (5)")
    add(
        "--postgres",
        default=_server(os.environ.get("DATABASE_URL"))
        if os.environ.get("DATABASE_URL", "").startswith("postgres")
        else DEFAULT_POSTGRES,
        help="PostgreSQL server; a fresh database payouts_chaos_<random> is made",
    )
    add(
        "--redis",
        default=_server(os.environ.get("REDIS_URL")) or DEFAULT_REDIS,
        help="Redis server",
    )
    add("--redis-db", type=int, default=None, help="default: a free one")
    add("--keep-db", action="store_true", help="keep the database for inspection")
    return parser, actions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser()[0].parse_args(argv)
    if args.no_pg_restart:
        args.pg_restarts = 0
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    return args


def replay_command(args: argparse.Namespace) -> str:
    options = []
    replayed = [a for a in build_parser()[1] if a.dest not in NOT_REPLAYED]
    for action in sorted(replayed, key=lambda a: REPLAY_RANK.get(a.dest, 1)):
        value = getattr(args, action.dest)
        if action.dest in SEED_CHOOSES and value in ("", None):
            continue
        text = f"{value:g}" if isinstance(value, float) else shlex.quote(str(value))
        options.append(f"{action.option_strings[0]} {text}")
    return "make chaos CHAOS_ARGS=" + shlex.quote(" ".join(options))


class Tee:
    """The console output, also written next to the process logs."""

    def __init__(self, stream: IO[str], path: Path) -> None:
        self.stream = stream
        self.file = path.open("a")

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", flush=True)


def snapshot_source(dest: Path) -> str:
    """Copy the source tree the processes will run: a run (and its replay) then tests
    one version of the code, whatever is edited in the checkout meanwhile."""
    shutil.copytree(
        ROOT,
        dest,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".run",
            ".git",
            "bench-results",
            "__pycache__",
            ".*cache",
            ".hypothesis",
        ),
    )

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    changed = len(git("status", "--porcelain").splitlines())
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}" + (
        f" + {changed} uncommitted files" if changed else ""
    )


def claim_redis_db(server: str, db: int | None) -> tuple[int, IO[bytes]]:
    """A Redis database for this run alone: empty, not one the project's other runs
    use, and locked on this machine (a file lock, released when this process ends,
    however it ends), so that two chaos runs never share a broker."""
    candidates = [db] if db is not None else _empty_dbs(server)
    random.SystemRandom().shuffle(candidates)
    parts = urlsplit(server)
    for number in candidates:
        path = Path(tempfile.gettempdir()) / (
            f"payouts-chaos-redis-{parts.hostname}-{parts.port or 6379}-{number}.lock"
        )
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        # Empty once the lock is held, or another user than a chaos run has it.
        if db is None and redis.Redis.from_url(f"{server}/{number}").dbsize():
            handle.close()
            continue
        return number, handle
    raise RuntimeError(
        "no free Redis database for the chaos run"
        + (f" (database {db} is in use by another run)" if db is not None else "")
    )


def _empty_dbs(server: str) -> list[int]:
    client = redis.Redis.from_url(f"{server}/0")
    count = int(client.config_get("databases").get("databases") or 16)
    return [
        n
        for n in range(count)
        if n not in TAKEN_REDIS_DBS
        and redis.Redis.from_url(f"{server}/{n}").dbsize() == 0
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    clock = Clock()
    try:
        return run(args, clock)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started here was stopped", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, clock: Clock) -> int:
    say = clock.say
    rng = random.Random(args.seed)
    # Drawn even when given, so that the rest of the seed's stream (the load, the
    # faults) is the same whichever way the latency was set.
    drawn = round(rng.uniform(5, 20))
    latency = args.gateway_latency_ms if args.gateway_latency_ms is not None else drawn
    specs = plan(rng, args.payouts)
    window = args.payouts / args.rate
    faults = schedule(
        rng,
        window,
        worker_kills=args.worker_kills,
        broker_flushes=args.broker_flushes,
        redis_outages=args.redis_outages,
        outage_mode=args.redis_outage_mode,
        pg_restarts=args.pg_restarts,
        follower_kills=args.follower_kills,
        gateway_windows=args.gateway_windows,
        webhook_kills=args.webhook_kills,
        receiver_outages=args.receiver_outages,
    )
    db, _claim = claim_redis_db(args.redis, args.redis_db)
    redis_parts = urlsplit(args.redis)
    proxy = TcpProxy((redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379))
    proxy.start()
    proxy_netloc = (
        f"{redis_parts.netloc.rsplit('@', 1)[0]}@" if "@" in redis_parts.netloc else ""
    ) + f"127.0.0.1:{proxy.port}"
    workdir = ROOT / ".run" / "chaos" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    for old in sorted(workdir.parent.iterdir())[:-KEEP_LOGS]:
        shutil.rmtree(old, ignore_errors=True)
    console, sys.stdout = sys.stdout, Tee(sys.stdout, workdir / "chaos.log")
    source = snapshot_source(workdir / "src")
    stack = Stack.fresh(
        workdir,
        "chaos",
        root=workdir / "src",
        postgres_url=args.postgres,
        redis_url=f"{args.redis}/{db}",
        overrides={
            "REDIS_URL": urlunsplit(
                (redis_parts.scheme, proxy_netloc, f"/{db}", "", "")
            ),
            "WORKER_CONCURRENCY": str(args.worker_concurrency),
            "STUCK_PAYOUT_AFTER": str(args.stuck_after),
            "SWEEP_INTERVAL": str(args.sweep_interval),
            "GATEWAY_LATENCY_MS": str(latency),
            "GATEWAY_READ_TIMEOUT": "3",
            # Few retries, so that payouts run out of them during the gateway
            # faults and the give-up (status lookup, void) is exercised too.
            "PAYOUT_MAX_RETRIES": str(args.max_retries),
            "FAILPOINTS": args.failpoints,
            "GATEWAY_FAULTS": "",
            "API_THROTTLE_RATE": "1000000/s",
            # The receiver is on loopback; retries within seconds, not hours.
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_RETRY_BASE": "0.2",
            "WEBHOOK_RETRY_MAX_DELAY": "2",
            "WEBHOOK_RETRY_WINDOW": "600",
            "WEBHOOK_READ_TIMEOUT": "2",
        },
    )
    receiver = ReceiverProcess(
        workdir / "receiver",
        free_port(),
        ("--fail-first", str(args.receiver_fail_first)),
    )
    admin_url = f"{args.postgres.rstrip('/')}/postgres"
    injector = Injector(
        stack,
        proxy,
        admin_url=admin_url,
        rng=random.Random(args.seed + 1),
        say=say,
        receiver=receiver,
    )
    print(f"chaos seed {args.seed}; replay with: {replay_command(args)}", flush=True)
    say(
        f"database {stack.dbname}, Redis db {db} via proxy 127.0.0.1:{proxy.port}, "
        f"gateway latency {latency:g} ms, FAILPOINTS={args.failpoints or '-'}, "
        f"logs in {workdir.relative_to(ROOT)}"
    )
    say(f"running a snapshot of the source: {source}")
    durations: dict[str, float] = {}
    try:
        started = time.monotonic()
        stack.prepare()
        stack.start()
        durations["setup"] = time.monotonic() - started
        say(
            f"stack up in {durations['setup']:.1f}s under supervisord: "
            + ", ".join(stack.names())
        )
        subscribe(stack, receiver)
        say(
            f"webhooks to a receiver on {receiver.url}, failing its first "
            f"{args.receiver_fail_first} requests"
        )
        say(
            f"load: {len(specs)} creates at {args.rate:g}/s over {window:.0f}s; "
            f"{len(faults)} faults scheduled: "
            + ", ".join(f"{k} {n}" for k, n in Counter(f.kind for f in faults).items())
        )
        load = Load(
            stack.web_url,
            stack.api_key,
            specs,
            rate=args.rate,
            clients=args.clients,
            seed=args.seed,
        )
        load.start()
        injector.start(faults, load.started)
        load.join()
        durations["load"] = load.finished - load.started
        say(f"load done in {durations['load']:.1f}s: {load.history.summary()}")
        while not injector.done.wait(1.0) and injector.alive():
            pass
        injected = injector.injected
        quiet_from = max(load.finished, injected.last_end or load.finished)
        snap, settled_after = wait_for_recovery(
            stack,
            quiet_from,
            args.recovery_seconds,
            say,
            crashes=lambda: failpoint_crashes(workdir / "worker.log"),
        )
        durations["recovery"] = time.monotonic() - quiet_from
        injector.stop.set()
        injector.join(30)
        alive = {name: stack.alive(name) for name in stack.names()}
        started = time.monotonic()
        freeze(stack, say)
        verify = verify_ledger(
            [str(BIN / "python"), "manage.py"], stack.env, str(stack.root)
        )
        charges = httpx.get(f"{stack.gateway_url}/charges", timeout=30).json()
        snap = snapshot(stack.database_url)
        # Any request the provider still held may charge when its hold ends: ask
        # again after the longest hold, for the failed payouts.
        time.sleep(LONGEST_HOLD)
        later = httpx.get(f"{stack.gateway_url}/charges", timeout=30).json()
        hooks = wait_for_webhooks(receiver, snap, args.recovery_seconds, say)
        results = check(
            snap,
            load.history,
            charges,
            recovery_seconds=args.recovery_seconds,
            verify=verify,
            later_charges=later,
        )
        results.append(check_webhooks(snap, hooks))
        results.append(restarted_by_supervisor(injector.injected.restarts))
        durations["checks"] = time.monotonic() - started
        save_evidence(workdir, load, charges, snap)
        report(
            args,
            load,
            injector,
            snap,
            results,
            durations,
            settled_after,
            verify,
            alive,
            exits=exits_on_their_own(workdir / "supervisord.log", injector.injected),
            crashes=failpoint_crashes(workdir / "worker.log"),
            window=(injected.first, injected.last_end, load.started),
            total=time.monotonic() - clock.t0,
        )
        return 0 if all(r.ok for r in results) else 1
    finally:
        injector.stop.set()
        injector.join(10)
        injector.restore_all()
        receiver.kill()
        proxy.restore()
        if args.pg_restarts:
            ensure_postgres_running(admin_url)
        if args.keep_db:
            stack.stop()
            print(f"kept database {stack.dbname}", flush=True)
        else:
            stack.destroy()
        proxy.close()
        sys.stdout.flush()
        sys.stdout = console


def subscribe(stack: Stack, receiver: ReceiverProcess) -> None:
    """Start the integrator's receiver and register it for every payout event."""
    receiver.start()
    response = httpx.post(
        f"{stack.web_url}/api/v1/webhook_endpoints/",
        json={"url": receiver.url, "description": "chaos receiver"},
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=30,
    )
    response.raise_for_status()
    receiver.use_secret(response.json()["secret"])


def wait_for_webhooks(
    receiver: ReceiverProcess, snap: Snapshot, seconds: float, say: Any
) -> dict[str, Any]:
    """The receiver's state once it holds an event for every status event in the
    log, or at the deadline (what is missing is then the webhooks check's finding)."""
    expected = sum(
        kind in STATUS_AFTER for s in snap.streams.values() for _, kind, _ in s.events
    )
    deadline = time.monotonic() + seconds
    state: dict[str, Any] = {"accepted": [], "counters": {}}
    while True:
        with contextlib.suppress(httpx.HTTPError):
            state = receiver.state()
            if len(state["accepted"]) >= expected:
                say(f"the receiver holds all {expected} webhook events")
                return state
        if time.monotonic() >= deadline:
            say(
                f"webhook deadline passed: {len(state['accepted'])}/{expected} "
                "events at the receiver"
            )
            return state
        time.sleep(1.0)


def restarted_by_supervisor(restarts: list[tuple[str, float | None]]) -> Result:
    """Every kill -9 of the whole worker was followed by the supervisor running it
    again (and the worker consuming) within the deadline."""
    workers = [seconds for name, seconds in restarts if name == "worker"]
    back = [s for s in workers if s is not None]
    slowest = f" (slowest {max(back):.1f}s)" if back else ""
    return Result(
        "restarted",
        f"workers restarted by the supervisor: {len(back)}/{len(workers)}{slowest}",
        len(back) == len(workers),
        [f"{name} not back" for name, seconds in restarts if seconds is None],
    )


def exits_on_their_own(log: Path, injected: Any) -> dict[str, int]:
    """Exits the supervisor saw beyond the kills the harness made (a process that
    crashed by itself), per process."""
    if not log.exists():
        return {}
    seen = Counter(
        line.split("exited: ", 1)[1].split(" ", 1)[0]
        for line in log.read_text(errors="replace").splitlines()
        if "exited: " in line and "not expected" in line
    )
    seen.subtract(Counter(name for name, _ in injected.restarts))
    return {name: count for name, count in seen.items() if count > 0}


def save_evidence(
    workdir: Path, load: Load, charges: list[dict[str, Any]], snap: Snapshot
) -> None:
    """What the checks read, kept with the logs for a post-mortem."""
    (workdir / "charges.json").write_text(json.dumps(charges, indent=1))
    with (workdir / "client-history.jsonl").open("w") as out:
        for attempt in load.history.attempts:
            out.write(json.dumps(dataclasses.asdict(attempt)) + "\n")
    (workdir / "streams.json").write_text(
        json.dumps({i: s.events for i, s in snap.streams.items()}, indent=1)
    )


def freeze(stack: Stack, say: Any, timeout: float = 20.0) -> None:
    """Stop the processing (beat, then the worker, gracefully) so that the checks read
    a state that no longer moves, and give the projector time to reach the log's head:
    if it cannot, that is a difference the projection check reports."""
    stack.stop("beat", "worker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error):
            if snapshot(stack.database_url).projection_lag() == 0:
                break
        time.sleep(0.5)
    say("worker and beat stopped for the checks")


def wait_for_recovery(
    stack: Stack,
    quiet_from: float,
    seconds: float,
    say: Any,
    crashes: Callable[[], int] = lambda: 0,
) -> tuple[Snapshot, float | None]:
    """Poll until every payout is final and the followers have caught up, or until
    the deadline; returns the last snapshot and how long after the faults it settled.

    A failpoint crash is a fault too, and payouts still in flight after the load can
    hit one: the deadline then runs from that crash (seen within a poll), since its
    payout waits out the lease, STUCK_PAYOUT_AFTER and a sweep before it moves again."""
    deadline = quiet_from + seconds
    say(f"load and faults over; waiting up to {seconds:g}s for every payout to settle")
    last_print = 0.0
    snap: Snapshot | None = None
    crashed = crashes()
    while True:
        if (now_crashed := crashes()) > crashed:
            crashed = now_crashed
            quiet_from = time.monotonic()
            deadline = quiet_from + seconds
            say(f"a failpoint crash during recovery; waiting up to {seconds:g}s again")
        try:
            snap = snapshot(stack.database_url)
        except psycopg.Error as exc:
            say(f"snapshot failed ({type(exc).__name__}); retrying")
        else:
            if settled(snap):
                after = time.monotonic() - quiet_from
                say(f"settled {after:.1f}s after the faults: {dict(snap.statuses())}")
                return snap, after
        now = time.monotonic()
        if now >= deadline:
            break
        if snap is not None and now - last_print >= 10:
            last_print = now
            say(
                f"  {dict(snap.statuses())}, projection {snap.projection_lag()} "
                f"events behind"
            )
        time.sleep(1.0)
    say("recovery deadline passed")
    return (snap or snapshot(stack.database_url)), None


def report(
    args: argparse.Namespace,
    load: Load,
    injector: Injector,
    snap: Snapshot,
    results: list[Any],
    durations: dict[str, float],
    settled_after: float | None,
    verify: tuple[int, str],
    alive: dict[str, bool],
    *,
    exits: dict[str, int],
    crashes: int,
    window: tuple[float | None, float | None, float],
    total: float,
) -> None:
    injected = injector.injected
    summary = load.history.summary()
    acked = load.history.acknowledged()
    bodies = {spec.index: spec.body for spec in load.specs}
    cancelled_asked = {spec.index for spec in load.specs if spec.cancel}
    as_promised = unexpected = gateway_unavailable = 0
    for ident, index in acked.items():
        stream, row = snap.streams.get(ident), snap.rows.get(ident)
        if stream is None or stream.status is None or stream.status == "cancelled":
            continue
        status, code = expected_outcome(bodies[index])
        actual_code = row.failure_code if row else None
        if (stream.status, actual_code) == (status, code):
            as_promised += 1
        elif actual_code == "gateway_unavailable":
            gateway_unavailable += 1
        else:
            unexpected += 1
    first, last, t0 = window
    print()
    print(f"chaos run, seed {args.seed}")
    print(
        f"load: {len(load.specs)} creates planned, {summary['requests']} POSTs, "
        f"{len(acked)} payouts acknowledged ({summary['replayed']} replays), "
        f"failures {summary['failures'] or 'none'}, "
        f"cancels {summary['cancels'] or 'none'} "
        f"(asked for {len(cancelled_asked)})"
    )
    modes = injected.worker_kill_modes
    outages = ", ".join(
        f"{m} {s:.1f}s ({n} links reset)" for m, s, n in injected.redis_outages
    )
    print(
        "faults injected: "
        f"worker kill -9 {injected.worker_kills} "
        f"({modes.get('worker', 0)} whole worker, {modes.get('child', 0)} pool child; "
        f"{injected.pids_killed} PIDs), "
        f"pool processes dead of SIGKILL (failpoints + child kills) {crashes}, "
        f"broker FLUSHDB {injected.broker_flushes} ({injected.keys_flushed} keys), "
        f"Redis outages {len(injected.redis_outages)}"
        + (f" [{outages}]" if outages else "")
        + f", PostgreSQL restarts {len(injected.pg_restarts)}"
        + (
            f" [{', '.join(f'{s:.1f}s' for s in injected.pg_restarts)}]"
            if injected.pg_restarts
            else ""
        )
        + f", run_followers kill -9 {len(injected.follower_kills)}"
        + (
            f" [lag {', '.join(str(n) for n in injected.follower_kills)} events]"
            if injected.follower_kills
            else ""
        )
        + f", gateway fault windows {len(injected.gateway_windows)}"
        + (
            f" [{', '.join(f'{s:.1f}s' for s in injected.gateway_windows)}]"
            if injected.gateway_windows
            else ""
        )
        + f", run_webhooks kill -9 {injected.webhook_kills}"
        + f", webhook receiver outages {len(injected.receiver_outages)}"
        + (
            f" [{', '.join(f'{s:.1f}s' for s in injected.receiver_outages)}]"
            if injected.receiver_outages
            else ""
        )
    )
    if injected.errors:
        print(f"fault injection errors: {injected.errors}")
    if exits:
        print(
            "processes that exited on their own (restarted by the supervisor): "
            + ", ".join(f"{name} {count}" for name, count in sorted(exits.items()))
        )
    span = (
        f"+{first - t0:.0f}s..+{last - t0:.0f}s of the load"
        if first is not None and last is not None
        else "none"
    )
    print(
        f"durations: setup {durations.get('setup', 0):.1f}s, load "
        f"{durations.get('load', 0):.1f}s, faults {span}, "
        + (
            f"settled {settled_after:.1f}s after the load and the faults ended"
            if settled_after is not None
            else f"NOT settled within {args.recovery_seconds:g}s"
        )
        + f", checks {durations.get('checks', 0):.1f}s, total {total:.1f}s"
    )
    print(
        f"statuses: {dict(sorted(snap.statuses().items()))}; outcomes as the test "
        f"cards promise: {as_promised}, failed gateway_unavailable after retries: "
        f"{gateway_unavailable}, other: {unexpected}"
    )
    down = [name for name, up in alive.items() if not up]
    print(
        f"processes alive at the end: {'all' if not down else 'NOT ' + ', '.join(down)}"
    )
    exit_code, output = verify
    verdict = output.splitlines()[-1] if output else ""
    print(f"verify_ledger (exit {exit_code}): {verdict}")
    print()
    for result in results:
        print(f"{'ok  ' if result.ok else 'FAIL'} {result.line}")
        for detail in result.details:
            print(f"       {detail}")
    failed = [r.name for r in results if not r.ok]
    print()
    if failed:
        print(f"FAILED: {', '.join(failed)} (seed {args.seed}; {replay_command(args)})")
    else:
        print(f"all invariants hold (seed {args.seed})")
