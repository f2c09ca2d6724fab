"""EVENT_STORE: the environment of the ledger application (eventsourcing keys)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from settings.env import RUN_DIR, env

_database_url = env.str("DATABASE_URL", default="")
_run_dir = RUN_DIR
_cipher_key = env.str("CIPHER_KEY", default="")
if not _cipher_key and not env.bool("DEBUG", default=False):
    raise ImproperlyConfigured(
        "CIPHER_KEY must be set (base64 of a 32-byte key): card numbers are "
        "encrypted at rest. `make run` writes a local one into .env on first start."
    )

EVENT_STORE_SCHEMA = env.str("EVENT_STORE_SCHEMA", default="eventstore")

if _database_url:
    _db = env.db_url_config(_database_url)
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
        "POSTGRES_MAX_OVERFLOW": env.str("EVENT_STORE_MAX_OVERFLOW", default="1"),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        # The insert-time table lock must never wait forever (the library's default).
        "POSTGRES_LOCK_TIMEOUT": env.str("EVENT_STORE_LOCK_TIMEOUT", default="5"),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "y",
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

if _cipher_key:
    EVENT_STORE["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
    EVENT_STORE["CIPHER_KEY"] = _cipher_key
