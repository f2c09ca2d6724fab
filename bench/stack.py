"""The bench's own stack: a private PostgreSQL database and Redis database, and the
processes of the Procfile started on free ports. Only PIDs started here are stopped."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import redis
from psycopg import sql

from tests.e2e import processes
from tests.e2e.processes import ROOT, free_port

if TYPE_CHECKING:
    from collections.abc import Callable


class StackError(RuntimeError):
    pass


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the bench itself is killed (even kill -9)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait for a child to exit without reaping it; True when it has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # already reaped
        if info is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class Stack:
    def __init__(
        self,
        *,
        postgres_url: str,
        dbname: str,
        redis_url: str,
        logs_dir: Path,
        gateway_latency_ms: float = 0.0,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.dbname = dbname
        self.admin_url = f"{postgres_url.rstrip('/')}/postgres"
        self.database_url = f"{postgres_url.rstrip('/')}/{dbname}"
        self.redis_url = redis_url
        self.logs_dir = logs_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="payouts-bench-"))
        self.web_port = free_port()
        self.gateway_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        (self.workdir / "run" / "static").mkdir(parents=True)
        (self.workdir / "prometheus").mkdir()
        inherited = {
            k: v
            for k, v in os.environ.items()
            # Nothing of the caller's own stack may leak into the bench's processes.
            if not k.startswith(("DATABASE_", "REDIS_", "EVENT_STORE_", "CELERY_"))
            and k not in ("GATEWAY_URL", "DJANGO_SETTINGS_MODULE", "PORT", "WEB_PORT")
        }
        self.env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "DEBUG": "false",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CIPHER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GATEWAY_URL": self.gateway_url,
            "GATEWAY_LATENCY_MS": str(gateway_latency_ms),
            "API_THROTTLE_RATE": "1000000/s",
            "LOG_LEVEL": "WARNING",
            "RUN_DIR": str(self.workdir / "run"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prometheus"),
            "PYTHONUNBUFFERED": "1",
            **(overrides or {}),
        }

    # The private database and Redis database

    def reset_storage(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            name = sql.Identifier(self.dbname)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        redis.Redis.from_url(self.redis_url).flushdb()

    def drop_storage(self) -> None:
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
        """VACUUM ANALYZE the bench database, as autovacuum would after a bulk load:
        right after seeding, the planner has no statistics for the new rows."""
        started = time.perf_counter()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        return time.perf_counter() - started

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params or None).fetchall()

    # One-shot commands

    def run(self, *args: str, timeout: float = 1800) -> str:
        """Run `python <args>` in the bench environment; its stdout, or StackError."""
        log = self.logs_dir / "commands.log"
        with log.open("ab") as err:
            err.write(f"\n$ python {' '.join(args)}\n".encode())
            err.flush()
            result = subprocess.run(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=timeout,
                check=False,
                preexec_fn=_die_with_parent,
            )
        if result.returncode != 0:
            raise StackError(
                f"`python {' '.join(args)}` exited {result.returncode}; see {log}"
            )
        return result.stdout.decode()

    def run_json(self, *args: str, timeout: float = 1800) -> dict[str, Any]:
        lines = self.run(*args, timeout=timeout).strip().splitlines()
        return json.loads(lines[-1])

    # Long-running processes, as in the Procfile

    def start_gateway(self) -> None:
        self._start("gateway", processes.gateway())
        self.wait_for(
            lambda: httpx.get(f"{self.gateway_url}/healthz").status_code == 200,
            30,
            "the fake gateway",
            "gateway",
        )

    def start_web(self, workers: int, threads: int) -> None:
        self._start(
            "web", processes.web(self.web_port, workers=workers, threads=threads)
        )
        self.wait_for(
            lambda: httpx.get(f"{self.web_url}/healthz").status_code == 200,
            60,
            "gunicorn",
            "web",
        )

    def start_worker(self, concurrency: int) -> None:
        self._start("worker", processes.worker(concurrency, "bench"))
        self.wait_for(
            lambda: b" ready." in self.log_of("worker"),
            90,
            "the Celery worker",
            "worker",
        )

    def start_followers(self) -> None:
        self._start("followers", processes.followers())
        self.wait_for(
            lambda: b"following the event log" in self.log_of("followers"),
            60,
            "run_followers",
            "followers",
        )

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.logs_dir / f"{name}.log").open("wb")
        try:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C reaches only the bench, which then
                # stops each process group it started, and nothing else.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def log_of(self, name: str) -> bytes:
        path = self.logs_dir / f"{name}.log"
        return path.read_bytes() if path.exists() else b""

    def wait_for(
        self, condition: Callable[[], Any], timeout: float, what: str, name: str
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise StackError(
                    f"{what} exited with {process.returncode}; see "
                    f"{self.logs_dir / f'{name}.log'}"
                )
            try:
                if condition():
                    return
            except (httpx.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.1)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited with {process.returncode} during the run; see "
                    f"{self.logs_dir / f'{name}.log'}"
                )

    def stop(self, *names: str) -> None:
        """SIGTERM each started process group (the leader is our child), then SIGKILL
        what is left after a grace period."""
        targets = [n for n in (names or tuple(self.processes)) if n in self.processes]
        for name in targets:
            process = self.processes[name]
            if process.returncode is None:  # never poll() here: it would reap
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for name in targets:
            process = self.processes.pop(name)
            if process.returncode is not None:
                continue  # reaped earlier: its pid may name someone else by now
            if not _wait_unreaped(process.pid, 20):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                _wait_unreaped(process.pid, 10)
            # The leader is a zombie until reaped, so its group id cannot be reused:
            # anything of that group that outlived it (a prefork child) goes now.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
