"""Test settings: the real stack when DATABASE_URL / REDIS_URL are set, embedded otherwise."""

from __future__ import annotations

import tempfile
from pathlib import Path

from projections.signing import write_signing_key
from settings.base import *  # noqa: F403
from settings.base import EVENT_STORE, REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING_CONFIG = None  # pytest captures logs; the JSON console handler is for processes

if EVENT_STORE["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
    # One event store per test session, never the developer's .run/ one.
    EVENT_STORE["SQLITE_DBNAME"] = str(
        Path(tempfile.mkdtemp(prefix="payouts-test-")) / "eventstore.sqlite3"
    )

# Still cached, so the tests go through the cache; short, so revoke_api_key's wait
# for it is short too.
API_KEY_CACHE_SECONDS = 1.0

PAYMENT_GATEWAY = {"CLASS": "workers.gateway.fake.FakeGateway"}
CELERY_TASK_ALWAYS_EAGER = False
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"user": "100000/s"},
}

# One signing key per test session, in the places the checkpointer would use.
_checkpoint_dir = Path(tempfile.mkdtemp(prefix="payouts-checkpoints-"))
CHECKPOINT_SIGNING_KEY_FILE = str(_checkpoint_dir / "checkpoint-signing-key.pem")
CHECKPOINT_LOG_FILE = str(_checkpoint_dir / "checkpoints.log")
CHECKPOINT_PUBLIC_KEY = write_signing_key(Path(CHECKPOINT_SIGNING_KEY_FILE))
