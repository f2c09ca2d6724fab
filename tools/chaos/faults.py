"""The faults: a schedule drawn from the seed, and the injector that carries it out.

Every fault touches only what the harness started or owns: the processes its
Stack's supervisor runs (by the PIDs the supervisor reports), its own Redis database
(FLUSHDB), its own proxy to Redis, its own fake gateway. A killed process is brought
back by that supervisor, as under `make run`; the harness only waits and counts. The one exception is the PostgreSQL restart, which is
the machine's shared cluster: done at most `--pg-restarts` times, kept short, and
always brought back up (`ensure_postgres_running`) even if the run is interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import redis

from tools.stack import StackError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tools.chaos.proxy import TcpProxy
    from tools.stack import Stack
    from tools.webhook_receiver import ReceiverProcess

# A killed process must be running and ready again within this (supervisor backoff
# included); past it, the restart counts as failed.
RESTART_DEADLINE = 30.0
GATEWAY_FAULTS = {
    "error": 0.15,
    "reset": 0.05,
    "accept_reset": 0.05,
    "slow": 0.02,
    # Charges only after the caller timed out: a lookup finds nothing yet.
    "slow_before": 0.03,
    "slow_seconds": 4.0,
}


@dataclass(order=True)
class Fault:
    at: float  # seconds after the load started
    kind: str
    duration: float = 0.0  # outage length
    mode: str = ""


def schedule(
    rng: random.Random,
    window: float,
    *,
    worker_kills: int,
    broker_flushes: int,
    redis_outages: int,
    outage_mode: str = "",
    pg_restarts: int,
    follower_kills: int,
    gateway_windows: int,
    webhook_kills: int = 0,
    receiver_outages: int = 0,
) -> list[Fault]:
    """Faults spread over [5 %, 85 %] of the load window, each kind stratified (one
    draw per equal slice) so that kills of one process do not pile up."""
    start, end = 0.05 * window, 0.85 * window

    def spread(count: int) -> list[float]:
        if count <= 0:
            return []
        width = (end - start) / count
        return [start + width * (n + rng.uniform(0.1, 0.9)) for n in range(count)]

    faults = [
        Fault(at, "worker_kill", mode="worker" if rng.random() < 0.8 else "child")
        for at in spread(worker_kills)
    ]
    faults += [Fault(at, "broker_flush") for at in spread(broker_flushes)]
    for at in spread(redis_outages):
        seconds, drawn = rng.uniform(3.0, 6.0), rng.choice(("cut", "stall"))
        faults.append(Fault(at, "redis_outage", seconds, outage_mode or drawn))
    # The shared PostgreSQL: in the middle of the load, when the most is in flight.
    faults += [
        Fault(rng.uniform(0.3 * window, 0.6 * window), "pg_restart")
        for _ in range(pg_restarts)
    ]
    faults += [Fault(at, "followers_kill") for at in spread(follower_kills)]
    faults += [
        Fault(at, "gateway_faults", min(rng.uniform(8.0, 15.0), window / 3))
        for at in spread(gateway_windows)
    ]
    faults += [Fault(at, "webhooks_kill") for at in spread(webhook_kills)]
    faults += [
        Fault(at, "receiver_outage", rng.uniform(3.0, 8.0))
        for at in spread(receiver_outages)
    ]
    return sorted(faults)


@dataclass
class Injected:
    worker_kills: int = 0
    worker_kill_modes: dict[str, int] = field(default_factory=dict)
    pids_killed: int = 0
    broker_flushes: int = 0
    keys_flushed: int = 0
    redis_outages: list[tuple[str, float, int]] = field(default_factory=list)
    pg_restarts: list[float] = field(default_factory=list)
    follower_kills: list[int] = field(default_factory=list)  # projector lag at the kill
    webhook_kills: int = 0
    receiver_outages: list[float] = field(default_factory=list)
    gateway_windows: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # (process, seconds until the supervisor had it running and ready again, or
    # None when it did not within RESTART_DEADLINE)
    restarts: list[tuple[str, float | None]] = field(default_factory=list)
    first: float | None = None
    last_end: float | None = None  # monotonic time the last fault ended


def postgres_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"))
    if len(versions) != 1:
        raise RuntimeError(
            f"expected one cluster version in /etc/postgresql: {versions}"
        )
    return versions[0]


def postgres_accepts(admin_url: str) -> bool:
    try:
        with psycopg.connect(admin_url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def ensure_postgres_running(admin_url: str) -> None:
    """After an interrupted restart: start the cluster again if it is down."""
    if postgres_accepts(admin_url):
        return
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            postgres_version(),
            "main",
            "start",
        ],
        timeout=120,
        check=False,
    )
    deadline = time.monotonic() + 60
    while not postgres_accepts(admin_url) and time.monotonic() < deadline:
        time.sleep(0.5)


class Injector:
    def __init__(
        self,
        stack: Stack,
        proxy: TcpProxy,
        *,
        admin_url: str,
        rng: random.Random,
        say: Callable[[str], None],
        receiver: ReceiverProcess | None = None,
    ) -> None:
        self.stack = stack
        self.proxy = proxy
        self.receiver = receiver
        self.admin_url = admin_url
        self.rng = rng
        self.say = say
        self.injected = Injected()
        self.stop = threading.Event()
        self.done = threading.Event()  # every fault injected and undone
        self.thread: threading.Thread | None = None
        # Faults still to undo (outage ends, gateway faults off), on their timers.
        self.pending: list[tuple[str, Callable[[], None]]] = []
        self.undoing: list[tuple[str, Callable[[], None]]] = []
        self.lock = threading.Lock()
        self.log_offsets: dict[str, int] = {}

    def start(self, faults: list[Fault], t0: float) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(faults, t0), name="faults", daemon=True
        )
        self.thread.start()

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, faults: list[Fault], t0: float) -> None:
        """Inject the faults on time (their undoing runs on timers of its own, so a
        slow fault never lengthens an outage), and in between act as the service's
        """
        todo = [(t0 + f.at, n, f) for n, f in enumerate(faults)]
        while not self.stop.is_set():
            if not todo and not self.pending and not self.done.is_set():
                self.injected.last_end = time.monotonic()
                self.done.set()
            due = min(todo[0][0] if todo else float("inf"), time.monotonic() + 1.0)
            if self.stop.wait(max(0.0, due - time.monotonic())):
                break
            if todo and todo[0][0] <= time.monotonic():
                _, _, fault = todo.pop(0)
                if self.injected.first is None:
                    self.injected.first = time.monotonic()
                self._guard(fault.kind, functools.partial(self._inject, fault))
                self.injected.last_end = time.monotonic()
        self.restore_all()

    def restore_all(self) -> None:
        """Undo every fault still active (outages, gateway faults): on the normal end
        and on an interrupted run alike."""
        for entry in list(self.pending):
            self._undo(entry)

    def _undo(self, entry: tuple[str, Callable[[], None]]) -> None:
        with self.lock:
            if entry in self.undoing or entry not in self.pending:
                return
            self.undoing.append(entry)
        self._guard(*entry)
        self.injected.last_end = time.monotonic()
        with self.lock:
            self.pending.remove(entry)

    def _guard(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:
            message = f"{what}: {type(exc).__name__}: {exc}"
            self.injected.errors.append(message)
            self.say(f"fault injection error, {message}")

    def _later(self, delay: float, what: str, action: Callable[[], None]) -> None:
        entry = (what, action)
        with self.lock:
            self.pending.append(entry)

        def undo() -> None:
            self.stop.wait(delay)  # on `stop`, at once
            self._undo(entry)

        threading.Thread(target=undo, name=what, daemon=True).start()

    def _inject(self, fault: Fault) -> None:
        getattr(self, f"_{fault.kind}")(fault)

    # The faults

    def _kill_and_await(self, name: str) -> list[int]:
        """kill -9 of a process and its children, then wait for the supervisor to
        have it running and ready again; the PIDs killed."""
        old = self.stack.pid(name)
        offset = len(self.stack.log_of(name))
        pids = self.stack.kill(name, group=True)
        if old is None or not pids:
            raise StackError(f"{name} was not running when its kill was due")
        try:
            seconds: float | None = self.stack.wait_restarted(
                name, old, offset, RESTART_DEADLINE
            )
            self.say(f"{name} restarted by the supervisor after {seconds:.1f}s")
        except StackError as exc:
            seconds = None
            self.say(f"{name} NOT restarted by the supervisor: {exc}")
        self.injected.restarts.append((name, seconds))
        return pids

    def _worker_kill(self, fault: Fault) -> None:
        injected = self.injected
        # At a random moment of its work, not during its start.
        self.stack.wait_ready("worker", 0, RESTART_DEADLINE)
        self.stop.wait(self.rng.uniform(0.0, 2.0))
        if fault.mode == "child":
            children = self.stack.children("worker")
            if children:
                child = self.rng.choice(children)
                if self.stack.kill_child("worker", child):
                    injected.worker_kills += 1
                    injected.pids_killed += 1
                    injected.worker_kill_modes["child"] = (
                        injected.worker_kill_modes.get("child", 0) + 1
                    )
                    self.say(f"kill -9 worker child {child}")
                    return
        self.say("kill -9 worker and its pool children")
        pids = self._kill_and_await("worker")
        injected.worker_kills += 1
        injected.pids_killed += len(pids)
        injected.worker_kill_modes["worker"] = (
            injected.worker_kill_modes.get("worker", 0) + 1
        )

    def _broker_flush(self, fault: Fault) -> None:
        client = redis.Redis.from_url(self.stack.redis_url)
        keys = int(client.dbsize())
        queued = int(client.llen("payouts"))
        client.flushdb()
        self.injected.broker_flushes += 1
        self.injected.keys_flushed += keys
        self.say(
            f"FLUSHDB on the broker's database: {keys} keys, {queued} queued tasks"
        )

    def _redis_outage(self, fault: Fault) -> None:
        if fault.mode == "stall":
            self.proxy.stall()
            cut = 0
        else:
            cut = self.proxy.cut()
        started = time.monotonic()
        self.say(
            f"Redis unreachable ({fault.mode}, {cut} connections reset) "
            f"for {fault.duration:.1f}s"
        )

        def restore() -> None:
            self.proxy.restore()
            seconds = time.monotonic() - started
            self.injected.redis_outages.append((fault.mode, seconds, cut))
            self.say(f"Redis reachable again after {seconds:.1f}s")

        self._later(fault.duration, "redis_restore", restore)

    def _pg_restart(self, fault: Fault) -> None:
        version = postgres_version()
        self.say(f"PostgreSQL {version}/main restart")
        started = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            timeout=120,
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 60
        while not postgres_accepts(self.admin_url):
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL not back within 60 s")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        self.injected.pg_restarts.append(seconds)
        self.say(f"PostgreSQL accepting connections again after {seconds:.1f}s")

    def _followers_kill(self, fault: Fault) -> None:
        # Aim at a batch in progress: wait (briefly) until the projector has work.
        lag, deadline = 0, time.monotonic() + 3.0
        while time.monotonic() < deadline:
            lag = self._projector_lag()
            if lag > 0:
                break
            time.sleep(0.02)
        self.say(f"kill -9 run_followers ({lag} events behind)")
        self._kill_and_await("followers")
        self.injected.follower_kills.append(lag)

    def _webhooks_kill(self, fault: Fault) -> None:
        self.say("kill -9 run_webhooks")
        self._kill_and_await("webhooks")
        self.injected.webhook_kills += 1

    def _receiver_outage(self, fault: Fault) -> None:
        """The integrator's receiver dies and comes back after `fault.duration` s: the
        sender's retries must carry every delivery over the gap, in order."""
        receiver = self.receiver
        if receiver is None:
            return
        self.say(f"kill -9 the webhook receiver for {fault.duration:.1f}s")
        receiver.kill()
        self.injected.receiver_outages.append(fault.duration)
        self._later(fault.duration, "receiver back", receiver.start)

    def _projector_lag(self) -> int:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.stack.database_url, connect_timeout=2) as conn,
        ):
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) "
                "FROM eventstore.payouts_events) - coalesce((SELECT position "
                "FROM projections_position WHERE name = 'payout_view'), 0)"
            ).fetchone()
            return int(row[0]) if row else 0
        return 0

    def _gateway_faults(self, fault: Fault) -> None:
        self._gateway(GATEWAY_FAULTS)
        started = time.monotonic()
        rates = {k: v for k, v in GATEWAY_FAULTS.items() if k != "slow_seconds"}
        self.say(f"gateway faults on for {fault.duration:.1f}s: {rates}")

        def off() -> None:
            self._gateway({})
            seconds = time.monotonic() - started
            self.injected.gateway_windows.append(seconds)
            self.say(f"gateway faults off after {seconds:.1f}s")

        self._later(fault.duration, "gateway_faults_off", off)

    def _gateway(self, settings: dict[str, Any]) -> None:
        response = httpx.put(
            f"{self.stack.gateway_url}/_control/faults", json=settings, timeout=5
        )
        response.raise_for_status()


def failpoint_crashes(log: Path) -> int:
    """Pool processes that died of SIGKILL, as the worker logs them (failpoints and
    child kills; a whole-worker kill leaves no such line)."""
    if not log.exists():
        return 0
    text = log.read_bytes()
    return text.count(b"exited with 'signal 9 (SIGKILL)'")
