"""The command lines of the Procfile's processes, for everything that starts them
outside `make run` (tests/e2e, chaos/, bench/): one definition, so a change to how a
process runs reaches every harness at once."""

from __future__ import annotations

import secrets
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# As in the Procfile's web line.
ACCESS_LOG_FORMAT = '{"request": "%(r)s", "status": %(s)s, "ms": %(M)s}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway() -> list[str]:
    return [str(BIN / "python"), "-m", "workers.gateway.fakeserver"]


def web(port: int, *, workers: int = 2, threads: int = 4) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "settings.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        # The per-user default (~/.gunicorn/gunicorn.ctl) would be shared by every
        # gunicorn of this user on the machine.
        "--no-control-socket",
    ]


def worker(concurrency: int, name: str) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "workers",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "-Q",
        "payouts",
        "-n",
        f"{name}-{secrets.token_hex(3)}@%h",
    ]


def followers() -> list[str]:
    return [str(BIN / "python"), "manage.py", "run_followers"]


def beat(schedule: Path) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "workers",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(schedule),
    ]
