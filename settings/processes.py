"""The process model's knobs: read by `manage.py supervise` (deploy/) and by
gunicorn.conf.py, which imports this module without setting Django up."""

from __future__ import annotations

from settings.env import PRODUCTION, RUN_DIR, env

# Set by the supervisor and by systemd for each process they run (deploy/); a shell
# names none.
PROCESS_NAME = env.str("PROCESS_NAME", default="")
PORT = env.int("PORT", default=8000)
# Behind a load balancer a production host listens on every interface; `make run`
# stays on loopback.
HOST = env.str("HOST", default="0.0.0.0" if PRODUCTION else "127.0.0.1")
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=2)
WEB_THREADS = env.int("WEB_THREADS", default=4)
# gunicorn's worker class: "gthread" (WEB_THREADS threads each) or "sync".
WEB_WORKER_CLASS = env.str("WEB_WORKER_CLASS", default="gthread")
# SIGTERM to gunicorn: requests in flight get this long to finish.
WEB_GRACEFUL_SECONDS = 10
# Celery's pool for the payout worker. "prefork": one process per payout in flight,
# so a crash takes one payout down. "threads": WORKER_CONCURRENCY payouts in flight
# in one process, each mostly waiting on the gateway, so the provider's latency
# does not cap throughput; but a crash takes every one of them down, and make chaos
# (whose failpoints kill the process) then misses its recovery deadline.
WORKER_POOL = env.str("WORKER_POOL", default="prefork")
if WORKER_POOL not in ("threads", "prefork"):
    raise ValueError(f"WORKER_POOL must be 'threads' or 'prefork', not {WORKER_POOL!r}")
WORKER_CONCURRENCY = env.int(
    "WORKER_CONCURRENCY", default=16 if WORKER_POOL == "threads" else 2
)
# The stand-in payment provider runs beside the service, never in production.
RUN_FAKE_GATEWAY = not PRODUCTION and env.bool("RUN_FAKE_GATEWAY", default=True)
# Empty: every process writes to the supervisor's standard output (`make run`).
# A directory: one `<process>.log` each there, and `supervisord.log`.
PROCESS_LOG_DIR = env.str("PROCESS_LOG_DIR", default="")
# prometheus-client reads this variable itself, and writes every metric of a process
# to the directory only where it is set: the supervisor hands it to every process
# and empties the directory before they start.
_metrics_dir = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# Whether this process's metrics are shared through that directory (/metrics and the
# dashboard then add up every process's).
METRICS_MULTIPROCESS = bool(_metrics_dir)
PROMETHEUS_MULTIPROC_DIR = _metrics_dir or str(RUN_DIR / "prometheus")
