"""The service as `make run` starts it, for the end-to-end tests, `make chaos` and
`make bench`: the process table of deploy/ under supervisord (`manage.py supervise`,
the last step of `make run`), on a PostgreSQL database and a Redis database of its
own, each process logging to `<workdir>/<name>.log` (PROCESS_LOG_DIR).

The harness never starts or restarts a process of the service itself: it asks the
supervisor (its XML-RPC interface, as supervisorctl does), or kills a process and
lets the supervisor bring it back. Only the supervisor started here is signalled."""

from __future__ import annotations

import base64
import configparser
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import redis
from psycopg import sql
from supervisor.xmlrpc import SupervisorTransport

from projections.signing import ensure_signing_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What each process logs once it does its work (the web and the gateway answer
# /healthz instead).
READY_LINES = {
    "worker": b" ready.",
    "followers": b"following the event log",
    "webhooks": b"delivering webhooks",
    "beat": b"beat: Starting",
    "checkpointer": b" ready.",
}
# Caller variables that would point the stack's processes at another stack.
FOREIGN = (
    "DATABASE_",
    "REDIS_",
    "EVENT_STORE_",
    "CELERY_",
    "PAYOUTS_",
    "CIPHER_",
    "CHECKPOINT_",
)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll until condition() is truthy; StackError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (httpx.HTTPError, OSError, xmlrpc.client.Error):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str,
        redis_url: str,
        overrides: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        """`redis_url` names the database number; `overrides`: environment of every
        process; `root`: the source tree to run (default: this checkout)."""
        self.workdir = workdir
        self.root = root or ROOT
        self.database_url = database_url
        self.redis_url = redis_url
        self.run_dir = workdir / "run"
        web_port, gateway_port = free_port(), free_port()
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(FOREIGN)
            and k not in ("DJANGO_SETTINGS_MODULE", "GATEWAY_URL", "SECRET_KEY")
        }
        self.env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "APP_ENV": "development",
            "DEBUG": "false",
            # The checkout's own .env (a developer's keys) stays out of the stack.
            "ENV_FILE": str(workdir / ".env"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CIPHER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "IDEMPOTENCY_FINGERPRINT_KEY": secrets.token_urlsafe(32),
            # The development default: the key in RUN_DIR, as `make run` makes it.
            "CHECKPOINT_PUBLIC_KEY": ensure_signing_key(
                self.run_dir / "checkpoint-signing-key.pem"
            )[0],
            "HOST": "127.0.0.1",
            "PORT": str(web_port),
            "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
            "GATEWAY_LATENCY_MS": "5",
            "RUN_DIR": str(self.run_dir),
            "PROCESS_LOG_DIR": str(workdir),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
            "API_THROTTLE_RATE": "100000/s",
            "STUCK_PAYOUT_AFTER": "30",
            "SWEEP_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",
            **(overrides or {}),
        }
        self.web_url = f"http://127.0.0.1:{self.env['PORT']}"
        self.gateway_url = self.env["GATEWAY_URL"]
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.api_key = ""
        self.admin_password = ""
        workdir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def fresh(
        cls,
        workdir: Path,
        name: str = "e2e",
        *,
        postgres_url: str | None = None,
        redis_url: str | None = None,
        overrides: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> Stack:
        """A stack on a new database `payouts_<name>_<random>`. `postgres_url`: the
        server (default: DATABASE_URL's); `redis_url`: with its database number
        (default: REDIS_URL's server, database 13)."""
        server = (postgres_url or os.environ["DATABASE_URL"].rsplit("/", 1)[0]).rstrip(
            "/"
        )
        return cls(
            workdir,
            database_url=f"{server}/payouts_{name}_{secrets.token_hex(4)}",
            redis_url=redis_url or os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/13",
            overrides=overrides,
            root=root,
        )

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, workdir: Path, name: str = "e2e", **options: Any
    ) -> Iterator[Stack]:
        """A fresh stack, prepared and started (every process), destroyed after."""
        stack = cls.fresh(workdir, name, **options)
        try:
            stack.prepare()
            stack.start()
            yield stack
        finally:
            stack.destroy()

    # Storage

    @property
    def dbname(self) -> str:
        return self.database_url.rsplit("/", 1)[1]

    @property
    def admin_url(self) -> str:
        return self.database_url.rsplit("/", 1)[0] + "/postgres"

    def create_database(self) -> None:
        """An empty database (dropped first if it exists) and an empty Redis db."""
        self.drop_database()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname))
            )
        redis.Redis.from_url(self.redis_url).flushdb()

    def drop_database(self) -> None:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.admin_url, autocommit=True) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.dbname)
                )
            )
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.redis_url).flushdb()

    def vacuum_analyze(self) -> float:
        """VACUUM ANALYZE, as autovacuum would after a bulk load; its seconds."""
        started = time.perf_counter()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        return time.perf_counter() - started

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params or None).fetchall()

    def prepare(self) -> None:
        """What `make run` does before its processes start, and an API key."""
        self.create_database()
        self.manage("migrate", "--noinput", timeout=300)
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.admin_password = self.manage("ensure_demo_admin").split()[-1]
        self.api_key = self.manage(
            "create_api_key", "admin", "--name", "e2e"
        ).splitlines()[-1]

    # One-shot commands

    def run(self, *args: str, timeout: float = 120) -> str:
        """`python <args>` in the stack's environment; its stdout, or StackError."""
        result = subprocess.run(
            [str(BIN / "python"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with (self.workdir / "commands.log").open("a") as log:
            log.write(f"\n$ python {' '.join(args)}\n{result.stderr}")
        if result.returncode != 0:
            raise StackError(
                f"`python {' '.join(args)}` exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def manage(self, *args: str, timeout: float = 120) -> str:
        return self.run("manage.py", *args, timeout=timeout).strip()

    def run_json(self, *args: str, timeout: float = 1800) -> dict[str, Any]:
        return json.loads(self.run(*args, timeout=timeout).strip().splitlines()[-1])

    # The supervisor

    def start(self, *names: str) -> None:
        """Start the named processes (all of the table when none is named) and wait
        until each does its work. The first call starts the supervisor itself."""
        if self.supervisor is None:
            self._launch(names)
        else:
            for name in names:
                offset = self._log_size(name)
                self._rpc().startProcess(self._program(name), False)
                self.wait_ready(name, offset)
            return
        wanted = names or self.names()
        for name in wanted:
            self.wait_ready(name, 0)

    def _launch(self, names: tuple[str, ...]) -> None:
        log = (self.workdir / "supervise.out").open("ab")
        command = [str(BIN / "python"), "manage.py", "supervise"]
        if names:
            command += ["--only", ",".join(names)]
        self.supervisor = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C of the caller reaches the supervisor
            # only through stop(), which then stops every process gracefully.
            start_new_session=True,
        )
        log.close()
        wait_for(
            lambda: (
                self.supervisor is not None
                and self.supervisor.poll() is None
                and (self.run_dir / "supervisord.conf").exists()
                and self._rpc().getState()["statename"] == "RUNNING"
            ),
            30,
            "supervisord",
        )

    def names(self) -> list[str]:
        return [info["name"] for info in self._rpc().getAllProcessInfo()]

    def info(self, name: str) -> dict[str, Any]:
        return dict(self._rpc().getProcessInfo(self._program(name)))

    def pid(self, name: str) -> int | None:
        info = self.info(name)
        running = info["statename"] in ("STARTING", "RUNNING") and info["pid"] > 0
        return int(info["pid"]) if running else None

    def alive(self, name: str) -> bool:
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            return self.info(name)["statename"] == "RUNNING"
        return False

    def children(self, name: str) -> list[int]:
        """The child PIDs of a process (a Celery worker's pool, gunicorn's workers)."""
        pid = self.pid(name)
        if pid is None:
            return []
        result = subprocess.run(
            ["ps", "--ppid", str(pid), "-o", "pid="],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(line) for line in result.stdout.split()]

    def kill(
        self, name: str, sig: int = signal.SIGKILL, *, group: bool = False
    ) -> list[int]:
        """Signal a process (with `group`, its children too), as the OOM killer or a
        crash would; the supervisor restarts it. The PIDs that were signalled."""
        pid = self.pid(name)
        if pid is None:
            return []
        pids = [pid, *self.children(name)] if group else [pid]
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        return pids

    def kill_child(self, name: str, child: int, sig: int = signal.SIGKILL) -> bool:
        """Signal one child of a process (checked to be its child right now)."""
        if child not in self.children(name):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)
            return True
        return False

    def wait_restarted(
        self, name: str, old_pid: int, offset: int, timeout: float = 30
    ) -> float:
        """Seconds until the supervisor has `name` running again under a new PID,
        doing its work (see wait_ready)."""
        started = time.monotonic()
        wait_for(
            lambda: (pid := self.pid(name)) is not None and pid != old_pid,
            timeout,
            f"the supervisor to restart {name}",
        )
        self.wait_ready(name, offset, timeout - (time.monotonic() - started))
        return time.monotonic() - started

    def wait_ready(self, name: str, offset: int, timeout: float = 60) -> None:
        """Until `name` is RUNNING for the supervisor and does its work: /healthz
        answers, or its ready line is logged after `offset` bytes of its log."""
        urls = {"web": self.web_url, "gateway": self.gateway_url}

        def ready() -> bool:
            if not self.alive(name):
                return False
            if name in urls:
                return httpx.get(f"{urls[name]}/healthz", timeout=2).status_code == 200
            return READY_LINES[name] in self.log_of(name)[offset:]

        wait_for(ready, timeout, f"{name} to be ready")

    def check_alive(self) -> None:
        """StackError if a process exited since the start (the supervisor restarted
        it, but a benchmark or a test that saw it die must not pass as clean)."""
        log = self.workdir / "supervisord.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        exits = [line for line in text.splitlines() if "not expected" in line]
        if exits:
            raise StackError(f"processes exited during the run: {exits[:5]}")

    def restart(self, name: str) -> None:
        offset = self._log_size(name)
        rpc = self._rpc()
        with contextlib.suppress(xmlrpc.client.Fault):  # not running
            rpc.stopProcess(self._program(name), True)
        rpc.startProcess(self._program(name), False)
        self.wait_ready(name, offset)

    def stop(self, *names: str, timeout: float = 60) -> int | None:
        """Stop the named processes through the supervisor (gracefully, as it stops
        them); with no names, the supervisor and everything: its exit code."""
        if self.supervisor is None:
            return None
        if names:
            for name in names:
                with contextlib.suppress(xmlrpc.client.Fault):
                    self._rpc().stopProcess(self._program(name), True)
            return None
        supervisor, self.supervisor = self.supervisor, None
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            try:
                return supervisor.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(supervisor.pid, signal.SIGKILL)
        return supervisor.wait(10)

    def destroy(self) -> None:
        self.stop()
        self.drop_database()

    def _program(self, name: str) -> str:
        """supervisorctl's name: `group:name`, or `name` in a group of its own."""
        for info in self._rpc().getAllProcessInfo():
            if info["name"] == name:
                group = info["group"]
                return name if group == name else f"{group}:{name}"
        raise StackError(f"the supervisor runs no process {name!r}")

    def _rpc(self) -> Any:
        """A fresh client each call: xmlrpc proxies are not for sharing between
        threads (make chaos injects faults from one)."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.run_dir / "supervisord.conf")
        ctl = parser["supervisorctl"]
        transport = SupervisorTransport(
            ctl["username"], ctl["password"], ctl["serverurl"]
        )
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=transport
        ).supervisor

    # Helpers

    def log_of(self, name: str) -> bytes:
        path = self.workdir / f"{name}.log"
        return path.read_bytes() if path.exists() else b""

    def _log_size(self, name: str) -> int:
        path = self.workdir / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def logs(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.workdir.glob("*.log")))

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.web_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
