"""Start the real processes (gateway, web, worker, followers, beat) on a fresh
PostgreSQL database and Redis database, for end-to-end and chaos tests (`chaos/`).
Only PIDs started here are signalled or stopped."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import redis

from tests.e2e import processes
from tests.e2e.processes import BIN, ROOT, free_port

if TYPE_CHECKING:
    from collections.abc import Callable


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll until condition() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Stack:
    database_url: str
    redis_url: str
    workdir: Path
    env: dict[str, str]
    web_url: str
    gateway_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_key: str = ""
    admin_password: str = ""
    # The source tree the processes run from (chaos/ runs a snapshot of it, immune to
    # edits made while it runs).
    root: Path = ROOT

    @classmethod
    def create(
        cls,
        workdir: Path,
        name: str = "e2e",
        *,
        postgres_url: str | None = None,
        redis_url: str | None = None,
        overrides: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> Stack:
        """`postgres_url`: the server (no database name; default: DATABASE_URL's);
        `redis_url`: the full URL with its database number (default: REDIS_URL's
        server, database 13); `overrides`: environment of every process; `root`: the
        source tree to run (default: this checkout)."""
        base_url = (
            postgres_url or os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        ).rstrip("/")
        dbname = f"payouts_{name}_{secrets.token_hex(4)}"
        redis_url = redis_url or os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/13"
        web_port, gateway_port = free_port(), free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "DATABASE_URL": f"{base_url}/{dbname}",
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CIPHER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
            "GATEWAY_LATENCY_MS": "5",
            "RUN_DIR": str(workdir / "run"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
            "API_THROTTLE_RATE": "100000/s",
            "STUCK_PAYOUT_AFTER": "30",
            "SWEEP_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",
            **(overrides or {}),
        }
        (workdir / "prometheus").mkdir(parents=True, exist_ok=True)
        return cls(
            database_url=env["DATABASE_URL"],
            redis_url=redis_url,
            workdir=workdir,
            env=env,
            web_url=f"http://127.0.0.1:{web_port}",
            gateway_url=env["GATEWAY_URL"],
            root=root or ROOT,
        )

    # Lifecycle

    def prepare(self) -> None:
        with psycopg.connect(self._admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        redis.Redis.from_url(self.redis_url).flushdb()
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.admin_password = self.manage("ensure_demo_admin").split()[-1]
        self.api_key = self.manage(
            "create_api_key", "admin", "--name", "e2e"
        ).splitlines()[-1]

    def start(self, *names: str) -> None:
        port = self.web_url.rsplit(":", 1)[1]
        commands = {
            "gateway": processes.gateway(),
            "web": processes.web(int(port)),
            "worker": processes.worker(
                int(self.env.get("WORKER_CONCURRENCY", "2")), "e2e"
            ),
            "followers": processes.followers(),
            "beat": processes.beat(self.workdir / "beat-schedule"),
        }
        for name in names or ("gateway", "web", "worker", "followers"):
            log = (self.workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                commands[name],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if "gateway" in self.processes:
            wait_for(
                lambda: httpx.get(f"{self.gateway_url}/healthz").status_code == 200,
                20,
                "gateway",
            )
        if "web" in self.processes:
            wait_for(
                lambda: httpx.get(f"{self.web_url}/healthz").status_code == 200,
                30,
                "web",
            )

    # Faults (chaos/): only the processes started above are ever signalled.

    def pid(self, name: str) -> int | None:
        process = self.processes.get(name)
        return process.pid if process is not None else None

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def children(self, name: str) -> list[int]:
        """The child PIDs of a started process (a Celery worker's pool processes)."""
        pid = self.pid(name)
        if pid is None or not self.alive(name):
            return []
        result = subprocess.run(
            ["ps", "--ppid", str(pid), "-o", "pid="],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(line) for line in result.stdout.split()]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal a started process and its children (its whole process group: each
        process is started in a session of its own). Returns the PIDs that were
        there; with SIGKILL, waits until the process is reaped."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return []
        pids = [process.pid, *self.children(name)]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return []
        if sig == signal.SIGKILL:
            process.wait(timeout=15)
        return pids

    def kill_child(self, name: str, child: int, sig: int = signal.SIGKILL) -> bool:
        """Signal one child of a started process (checked to be its child right now)."""
        if child not in self.children(name):
            return False
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            return False
        return True

    def restart(self, name: str) -> None:
        """Start a process again, stopping it first if it still runs."""
        if self.alive(name):
            self.stop(name)
        self.processes.pop(name, None)
        self.start(name)

    def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=15)
            except ProcessLookupError:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def destroy(self) -> None:
        self.stop()
        try:
            with psycopg.connect(self._admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except psycopg.Error:
            pass
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.redis_url).flushdb()

    # Helpers

    @property
    def dbname(self) -> str:
        return self.database_url.rsplit("/", 1)[1]

    def _admin_url(self) -> str:
        return self.database_url.rsplit("/", 1)[0] + "/postgres"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout.strip()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.web_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query).fetchall()

    def logs(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.workdir.glob("*.log")))
