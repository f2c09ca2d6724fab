"""Ledger checkpoints: who may sign them, who verifies them, and how often.

A checkpoint is signed with an Ed25519 private key that only the checkpointer process
(deploy/processes.py) and an operator's own `manage.py checkpoint` ever load; every
process may read the public key, which is all `verify_ledger` needs."""

from __future__ import annotations

from settings.deployment import CHECKPOINT_PUBLIC_KEY  # noqa: F401 (a setting)
from settings.env import PRODUCTION, RUN_DIR, env
from settings.processes import PROCESS_NAME

# The checkpointer, and an operator's shell (which names no process).
SIGNING_PROCESSES = ("checkpointer", "")
# The web, worker, followers and beat processes never learn where the private key is,
# whatever their environment says: an intruder in one of them cannot sign. In
# production there is no default: the path is configured for the checkpointer alone.
CHECKPOINT_SIGNING_KEY_FILE = (
    env.str(
        "CHECKPOINT_SIGNING_KEY_FILE",
        default="" if PRODUCTION else str(RUN_DIR / "checkpoint-signing-key.pem"),
    )
    if PROCESS_NAME in SIGNING_PROCESSES
    else ""
)
# Every (seq, digest) the checkpointer signs is appended here, outside the database:
# what an auditor publishes, and what the checkpointer checks the chain against
# before it extends it.
CHECKPOINT_LOG_FILE = env.str(
    "CHECKPOINT_LOG_FILE", default=str(RUN_DIR / "checkpoints.log")
)
CHECKPOINT_INTERVAL = env.float("CHECKPOINT_INTERVAL", default=900.0)
# verify_ledger fails when the newest checkpoint (or, with none, the first event) is
# older than this: checkpoints cut from the end of the chain show up within it.
CHECKPOINT_MAX_AGE = env.float(
    "CHECKPOINT_MAX_AGE", default=3 * CHECKPOINT_INTERVAL + 300
)
