"""gunicorn's configuration (the web process of deploy/processes.py)."""

from __future__ import annotations

import signal
from typing import Any

from billiard.util import set_pdeathsig
from prometheus_client import multiprocess

from settings.processes import (
    HOST,
    PORT,
    PROMETHEUS_MULTIPROC_DIR,
    WEB_CONCURRENCY,
    WEB_GRACEFUL_SECONDS,
    WEB_THREADS,
    WEB_WORKER_CLASS,
)

bind = [f"{HOST}:{PORT}"]
workers = WEB_CONCURRENCY
threads = WEB_THREADS
worker_class = WEB_WORKER_CLASS
# A worker silent for this long is killed and replaced by the master.
timeout = 30
# SIGTERM: stop accepting, let requests in flight finish for this long.
graceful_timeout = WEB_GRACEFUL_SECONDS
keepalive = 5
# Heartbeat files in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm"
# The per-user default (~/.gunicorn/gunicorn.ctl) would be shared by every gunicorn
# of this user on the machine.
control_socket_disable = True
accesslog = "-"
access_log_format = '{"request": "%(r)s", "status": %(s)s, "ms": %(M)s}'
errorlog = "-"


def post_fork(server: Any, worker: Any) -> None:
    """A worker whose master is killed (kill -9, the OOM killer) quits at once: left
    to notice it, it would hold the listening port for seconds while the master the
    supervisor starts again fails to bind it."""
    set_pdeathsig(signal.SIGQUIT)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not stay in /metrics."""
    if PROMETHEUS_MULTIPROC_DIR:
        multiprocess.mark_process_dead(worker.pid, PROMETHEUS_MULTIPROC_DIR)
