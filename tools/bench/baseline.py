"""The baseline (../shared/baseline: the seed-shaped CRUD service this project
replaces), started by the bench as its README says, from this project's .venv:
gunicorn `baseline.wsgi -w 4 -k sync`, and for the end-to-end phase its Celery worker
`-P prefork -c 2 --without-gossip --without-mingle --without-heartbeat` with
CELERY_DB_REUSE_MAX=1000, each on a PostgreSQL database (PGDATABASE) and a Redis
database (BASELINE_REDIS_URL) of its own.

It is not our service, so no supervisor: the bench starts its two processes
directly, each in a process group of its own, and `stop()` ends those groups.
Requests authenticate with a session cookie from a real login through
`/api-auth/login/` (with its CSRF token): HTTP Basic would cost every request a
PBKDF2 hash (about 260 ms of CPU), which measures the hasher, not the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from celery import Celery
from psycopg import sql

from tools.stack import free_port, wait_for

BIN = Path(sys.executable).parent
USERNAME, PASSWORD = "admin", "admin"
TABLE = "payouts_payoutrequest"


class BaselineError(RuntimeError):
    pass


class Baseline:
    def __init__(
        self, directory: Path, logs: Path, *, postgres_url: str, redis_url: str
    ) -> None:
        """`postgres_url`: the server (no database); `redis_url`: with its number."""
        if not (directory / "manage.py").exists():
            raise BaselineError(f"no baseline at {directory} (see --baseline-dir)")
        self.directory, self.logs = directory, logs
        self.server = postgres_url.rstrip("/")
        self.redis_url = redis_url
        parts = urlsplit(self.server)
        self.pg = {
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432),
            "PGUSER": parts.username or "postgres",
            "PGPASSWORD": parts.password or "",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.headers: dict[str, str] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def env(self, dbname: str) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PG", "DJANGO_", "CELERY_", "BASELINE_"))
        }
        return {
            **inherited,
            **self.pg,
            "PGDATABASE": dbname,
            "BASELINE_REDIS_URL": self.redis_url,
            # Celery's Django fixup otherwise reconnects around every task (the
            # baseline README: 2.4 times slower, not a fair comparison).
            "CELERY_DB_REUSE_MAX": "1000",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }

    # Databases

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(f"{self.server}/postgres", autocommit=True)

    def database_comment(self, dbname: str) -> dict[str, Any] | None:
        """The bench's marker on a database (written once it is complete), or
        None when the database does not exist or carries none."""
        with self._admin() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = %s",
                (dbname,),
            ).fetchone()
        if row is None:
            return None
        try:
            marker = json.loads(row[0] or "")
        except ValueError:
            return {}
        return marker if isinstance(marker, dict) else {}

    def set_comment(self, dbname: str, marker: dict[str, Any]) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(dbname), sql.Literal(json.dumps(marker))
                )
            )

    def create_database(self, dbname: str) -> None:
        """A new empty database, migrated, with the admin user."""
        self.drop_database(dbname)
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self.manage(dbname, "migrate", "--noinput")
        self.manage(
            dbname, "createsuperuser", "--noinput", "--username", USERNAME,
            "--email", "a@example.invalid",
        )  # fmt: skip

    def drop_database(self, dbname: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname)
                )
            )

    def migrations_current(self, dbname: str) -> bool:
        try:
            self.manage(dbname, "migrate", "--check")
        except BaselineError:
            return False
        return True

    def seed(self, dbname: str, rows: int) -> float:
        """The baseline's own seed.sql (20% pending, 5% processing, 70% completed,
        5% failed): its seconds, VACUUM ANALYZE included."""
        started = time.perf_counter()
        result = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"n={rows}",
             "-f", str(self.directory / "seed.sql")],
            env=self.env(dbname), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BaselineError(f"seed.sql failed: {result.stderr[-2000:]}")
        return time.perf_counter() - started

    def sql(self, dbname: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(f"{self.server}/{dbname}", autocommit=True) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def manage(self, dbname: str, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=self.directory,
            env=self.env(dbname),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise BaselineError(
                f"baseline `manage.py {' '.join(args)}` exited {result.returncode}: "
                f"{result.stderr[-2000:]}"
            )
        return result.stdout

    def flush_broker(self) -> None:
        redis.Redis.from_url(self.redis_url).flushdb()

    # Processes

    def start_web(self, dbname: str, workers: int = 4) -> None:
        self._spawn(
            "web",
            dbname,
            [str(BIN / "gunicorn"), "baseline.wsgi", "-b", f"127.0.0.1:{self.port}",
             "-w", str(workers), "-k", "sync"],
        )  # fmt: skip
        wait_for(
            lambda: self._alive("web") and httpx.get(f"{self.url}/api-auth/login/"),
            60,
            "the baseline's gunicorn",
        )
        self.headers = self.login()

    def start_worker(self, dbname: str, concurrency: int = 2) -> None:
        self._spawn(
            "worker",
            dbname,
            [str(BIN / "celery"), "-A", "baseline", "worker", "-P", "prefork",
             "-c", str(concurrency), "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--hostname", f"baseline-{self.port}@%h"],
        )  # fmt: skip
        control = Celery(broker=self.redis_url).control
        # At its default log level the worker logs no ready line; it answers a
        # ping once it consumes.
        wait_for(
            lambda: self._alive("worker") and control.ping(timeout=0.5),
            60,
            "the baseline's Celery worker",
            interval=0.5,
        )

    def _spawn(self, name: str, dbname: str, command: list[str]) -> None:
        self.stop(name)
        with (self.logs / f"baseline-{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=self.directory,
                env=self.env(dbname),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _alive(self, name: str) -> bool:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            raise BaselineError(
                f"the baseline's {name} exited; see {self.logs}/baseline-{name}.log"
            )
        return True

    def stop(self, *names: str) -> None:
        """Stop the named processes (all when none is named): SIGTERM to each one's
        process group, SIGKILL after 20 s."""
        for name in names or list(self.processes):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def login(self) -> dict[str, str]:
        """A session through the login form (one PBKDF2 hash, here): the headers
        every later request sends, the CSRF token included for POSTs."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            page = client.get("/api-auth/login/")
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            if match is None:
                raise BaselineError("no CSRF token on the baseline's login page")
            answer = client.post(
                "/api-auth/login/",
                data={
                    "username": USERNAME,
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": match.group(1),
                    "next": "/api/v1/payouts/",
                },
            )
            session = client.cookies.get("sessionid")
            csrf = client.cookies.get("csrftoken")
            if answer.status_code != 302 or not session or not csrf:
                raise BaselineError(f"baseline login failed: {answer.status_code}")
        return {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf}
