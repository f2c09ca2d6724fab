"""Start the real processes (gateway, web, worker, followers) on a fresh PostgreSQL
database and Redis database, for end-to-end tests. Only PIDs started here are stopped."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import redis

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    @classmethod
    def create(cls, workdir: Path, name: str = "e2e") -> Stack:
        base_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        dbname = f"payouts_{name}_{secrets.token_hex(4)}"
        redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/13"
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
        }
        (workdir / "prometheus").mkdir(parents=True, exist_ok=True)
        return cls(
            database_url=env["DATABASE_URL"],
            redis_url=redis_url,
            workdir=workdir,
            env=env,
            web_url=f"http://127.0.0.1:{web_port}",
            gateway_url=env["GATEWAY_URL"],
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
            "gateway": [str(BIN / "python"), "-m", "workers.gateway.fakeserver"],
            "web": [
                str(BIN / "gunicorn"),
                "settings.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--no-control-socket",
            ],
            "worker": [
                str(BIN / "celery"),
                "-A",
                "workers",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "-Q",
                "payouts",
                "-n",
                f"e2e-{secrets.token_hex(3)}@%h",
            ],
            "followers": [str(BIN / "python"), "manage.py", "run_followers"],
            "beat": [
                str(BIN / "celery"),
                "-A",
                "workers",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.workdir / "beat-schedule"),
            ],
        }
        for name in names or ("gateway", "web", "worker", "followers"):
            log = (self.workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                commands[name],
                cwd=ROOT,
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

    def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=15)
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

    # Helpers

    @property
    def dbname(self) -> str:
        return self.database_url.rsplit("/", 1)[1]

    def _admin_url(self) -> str:
        return self.database_url.rsplit("/", 1)[0] + "/postgres"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
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
