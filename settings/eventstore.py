"""EVENT_STORE: the whole environment of the ledger application (eventsourcing keys).

The ledger application reads nothing else: the library would merge os.environ and let
any PAYOUTS_-prefixed variable override these (Payouts.construct_env stops that).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from eventsourcing.utils import Environment

from ledger.cipher import RotatingCipher
from ledger.storage import unsafe_options
from settings import deployment
from settings.deployment import DATABASE_URL
from settings.env import RUN_DIR, env
from settings.processes import WORKER_CONCURRENCY, WORKER_POOL

_run_dir = RUN_DIR
_APP_NAME = "payouts"


# The insert lock is what keeps notification ids committing in order; refused
# wherever it is asked for, even though the ledger no longer reads the environment.
if _unsafe := unsafe_options(dict(env.ENVIRON), _APP_NAME):
    raise ImproperlyConfigured(
        f"{', '.join(_unsafe)} must not be set: the event store would insert without "
        "its table lock, and the projector and dispatcher would skip late commits."
    )

# Card numbers are encrypted at rest, always: DEBUG is no reason to write them in the
# clear.
if not deployment.CIPHER_KEYS:
    raise ImproperlyConfigured(
        "CIPHER_KEYS must be set: card numbers are encrypted at rest. `make run` "
        "writes a local one into .env on first start; `manage.py rotate_cipher_key` "
        "makes a new one."
    )

EVENT_STORE_SCHEMA = env.str("EVENT_STORE_SCHEMA", default="eventstore")

if DATABASE_URL:
    _db = env.db_url_config(DATABASE_URL)
    EVENT_STORE: dict[str, str] = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": _db["NAME"],
        "POSTGRES_HOST": _db.get("HOST") or "127.0.0.1",
        "POSTGRES_PORT": str(_db.get("PORT") or 5432),
        "POSTGRES_USER": _db.get("USER") or "postgres",
        "POSTGRES_PASSWORD": _db.get("PASSWORD") or "",
        "POSTGRES_SCHEMA": EVENT_STORE_SCHEMA,
        # The schema is created by a migration; concurrent CREATE TABLE at process
        # start races on PostgreSQL's catalog.
        "CREATE_TABLE": "n",
        # Each process needs one or two connections; more only adds idle sessions.
        "POSTGRES_POOL_SIZE": env.str("EVENT_STORE_POOL_SIZE", default="1"),
        # A threaded worker runs WORKER_CONCURRENCY payouts at once: as many
        # connections on demand, none of them held open while idle.
        "POSTGRES_MAX_OVERFLOW": env.str(
            "EVENT_STORE_MAX_OVERFLOW",
            default=str(WORKER_CONCURRENCY if WORKER_POOL == "threads" else 1),
        ),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        # The insert-time table lock must never wait forever (the library's default).
        "POSTGRES_LOCK_TIMEOUT": env.str("EVENT_STORE_LOCK_TIMEOUT", default="5"),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5",
        # No check query on every checkout (one more round trip per ledger call):
        # the library retries a call that meets a dead connection, which the pool
        # then discards (EVENT_STORE_PRE_PING=y brings the check back).
        "POSTGRES_PRE_PING": env.str("EVENT_STORE_PRE_PING", default="n"),
    }
else:
    EVENT_STORE = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": env.str(
            "EVENT_STORE_SQLITE_PATH", default=str(_run_dir / "eventstore.sqlite3")
        ),
        "SQLITE_LOCK_TIMEOUT": "20",
        "CREATE_TABLE": "y",
    }

EVENT_STORE["CIPHER_TOPIC"] = "ledger.cipher:RotatingCipher"
EVENT_STORE["CIPHER_KEYS"] = deployment.CIPHER_KEYS
# A malformed key fails here, at startup, not at the first event read or written.
try:
    RotatingCipher(Environment(_APP_NAME, EVENT_STORE))
except (OSError, ValueError) as error:
    raise ImproperlyConfigured(f"Cipher keys: {error}") from None
