"""What only a deployer can choose: where the services are, the secrets, the host
names. Each is read here, once, and the other settings modules import it: then
APP_ENV=production can refuse to start without any of them before anything uses them.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from settings.env import PRODUCTION, env

# Unset: the embedded defaults of a local run (SQLite and a file broker in RUN_DIR,
# a process-local cache).
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
# As given: settings/base.py says what a missing one costs outside production.
SECRET_KEY = env.str("SECRET_KEY", default="")
IDEMPOTENCY_FINGERPRINT_KEY = env.str("IDEMPOTENCY_FINGERPRINT_KEY", default="")
# `id:base64key,...`, the last key encrypting (settings/eventstore.py).
CIPHER_KEYS = env.str("CIPHER_KEYS", default="")
# Comma-separated Ed25519 public keys (base64 of the 32 raw bytes, as `make run`
# writes it into .env); the first is the current one, older ones verify older
# checkpoints after a rotation (settings/checkpoints.py).
CHECKPOINT_PUBLIC_KEY = env.str("CHECKPOINT_PUBLIC_KEY", default="")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"]
)

if PRODUCTION:
    # No generated secret, no embedded database or broker, no guessed host names.
    _missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("CIPHER_KEYS", CIPHER_KEYS),
            ("IDEMPOTENCY_FINGERPRINT_KEY", IDEMPOTENCY_FINGERPRINT_KEY),
            ("CHECKPOINT_PUBLIC_KEY", CHECKPOINT_PUBLIC_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("DATABASE_URL", DATABASE_URL),
            ("REDIS_URL", REDIS_URL),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"APP_ENV=production needs {', '.join(_missing)} set (README, "
            "'Running in production')"
        )
