"""The service's processes, defined once.

`manage.py supervise` runs this table under supervisord (`make run`, and through it
the tests, `make bench` and `make chaos`); `manage.py export_systemd` writes the same
table as systemd units. Nothing else spells out a command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# The virtual environment's executables, next to the interpreter running this.
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Process:
    name: str
    command: tuple[str, ...]
    # A graceful stop (SIGTERM to the main process) may take this long; after it,
    # SIGKILL goes to the process's whole group (pool children, gunicorn workers).
    stop_seconds: int
    # The stand-in payment provider: started first and stopped last, so that the
    # worker's calls in flight during a stop still get their answer.
    provider: bool = False
    # The checkpointer: the one process told where the checkpoint signing key is
    # (CHECKPOINT_SIGNING_KEY_FILE in its own environment, or a systemd credential).
    signs_checkpoints: bool = False


def _celery_worker(hostname: str, queue: str, *pool: str) -> tuple[str, ...]:
    """A Celery worker of `queue` alone, `pool` its pool options."""
    return (
        str(BIN / "celery"),
        "--app",
        "workers",
        "worker",
        "--loglevel",
        "INFO",
        *pool,
        "--queues",
        queue,
        "--hostname",
        f"{hostname}@%h",
        # Nothing here uses worker-to-worker broadcasts; without them a restarted
        # worker is consuming a second sooner.
        "--without-gossip",
        "--without-mingle",
    )


def processes(*, fake_gateway: bool | None = None) -> list[Process]:
    """The processes of this configuration, in start order."""
    root = Path(settings.BASE_DIR)
    python, celery = str(BIN / "python"), str(BIN / "celery")
    table = [
        Process(
            "web",
            (
                str(BIN / "gunicorn"),
                "--config",
                str(root / "gunicorn.conf.py"),
                "settings.wsgi",
            ),
            # gunicorn's own graceful stop, and a little more.
            stop_seconds=settings.WEB_GRACEFUL_SECONDS + 5,
        ),
        Process(
            "worker",
            _celery_worker(
                "worker",
                "payouts",
                "--pool",
                settings.WORKER_POOL,
                "--concurrency",
                str(settings.WORKER_CONCURRENCY),
            ),
            # Warm shutdown: the tasks running finish (a gateway call reads for at
            # most GATEWAY_READ_TIMEOUT); unacked ones go back to the queue.
            stop_seconds=20,
        ),
        Process(
            "followers",
            (python, str(root / "manage.py"), "run_followers"),
            stop_seconds=15,
        ),
        Process(
            "webhooks",
            (python, str(root / "manage.py"), "run_webhooks"),
            # Sends in flight finish and record their attempt (a read waits at most
            # WEBHOOK_READ_TIMEOUT); one cut short is sent again after the restart.
            stop_seconds=int(settings.WEBHOOK_READ_TIMEOUT) + 5,
        ),
        Process(
            "checkpointer",
            _celery_worker(
                "checkpointer", settings.CHECKPOINT_QUEUE, "--concurrency", "1"
            ),
            # A checkpoint cut short is never half-written (one insert); the next
            # beat tick takes it again.
            stop_seconds=10,
            signs_checkpoints=True,
        ),
        Process(
            "beat",
            (celery, "--app", "workers", "beat", "--loglevel", "INFO"),
            stop_seconds=5,
        ),
    ]
    if settings.RUN_FAKE_GATEWAY if fake_gateway is None else fake_gateway:
        gateway = Process(
            "gateway",
            (python, "-m", "workers.gateway.fakeserver"),
            stop_seconds=5,
            provider=True,
        )
        table.insert(0, gateway)
    return table
