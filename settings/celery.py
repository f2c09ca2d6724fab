"""CELERY_*: each delivery setting says which failure it covers (RELIABILITY.md §1)."""

from __future__ import annotations

from settings.checkpoints import CHECKPOINT_INTERVAL
from settings.deployment import REDIS_URL
from settings.env import RUN_DIR, env

_run_dir = RUN_DIR
# Every retry countdown and every task must finish well inside this, or Redis hands
# the still-running message to a second worker (duplicate concurrent execution).
VISIBILITY_TIMEOUT = 900

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Each transport takes options of its own: Redis numbers, the filesystem paths.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, int | str] = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # Fail a publish fast when Redis is gone: the dispatcher keeps its position
        # and tries again, the request path never publishes at all.
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        # Notice a dead connection in seconds, not after the OS gives up on it.
        "health_check_interval": 5,
    }
else:
    # Embedded default: messages are files in .run/broker, shared by every local
    # process; no Redis needed. Not for more than one machine.
    for _name in ("broker", "broker-control"):
        (_run_dir / _name).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_run_dir / "broker"),
        "data_folder_out": str(_run_dir / "broker"),
        "control_folder": str(_run_dir / "broker-control"),
    }

CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# State lives in the event store; a result backend would only be another thing to lose.
CELERY_TASK_IGNORE_RESULT = True
# A task killed mid-run (crash, kill -9, OOM) is redelivered instead of forgotten.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Reserve only the task being run: a dead worker strands no prefetched messages.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task that can no longer be acked after a broker disconnect is cancelled, so it is
# redelivered rather than finishing unacknowledged.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A hung gateway call cannot hold a worker forever.
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_DEFAULT_QUEUE = "payouts"
# Only the checkpointer process consumes this queue; it alone holds the signing key.
CHECKPOINT_QUEUE = "checkpoints"
CELERY_TASK_ROUTES = {"workers.tasks.checkpoint_ledger": {"queue": CHECKPOINT_QUEUE}}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(_run_dir / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-payouts": {
        "task": "workers.tasks.sweep_stuck_payouts",
        "schedule": env.float("SWEEP_INTERVAL", default=30.0),
    },
    "checkpoint-ledger": {
        "task": "workers.tasks.checkpoint_ledger",
        "schedule": CHECKPOINT_INTERVAL,
        # A checkpointer that was down finds one fresh request, not a backlog.
        "options": {"expires": CHECKPOINT_INTERVAL},
    },
}
# Retry policy of process_payout: exponential backoff with jitter, bounded both in
# count and in delay (always far below VISIBILITY_TIMEOUT).
PAYOUT_MAX_RETRIES = env.int("PAYOUT_MAX_RETRIES", default=6)
PAYOUT_RETRY_BACKOFF_MAX = 60
# Fault tests only: named crash points, e.g. "after_gateway_call:0.05" (workers/failpoints.py).
FAILPOINTS = env.str("FAILPOINTS", default="")
