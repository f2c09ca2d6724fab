"""The only reader of the process environment (and of an optional `.env` file)."""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (created by `make run` on first start) fills in what the real
# environment leaves unset; real environment variables always win, in every process
# and every manage.py command alike (the supervisor passes its own environment on).
ENV_FILE = Path(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))
environ.Env.read_env(ENV_FILE, overwrite=False)

# `production` is the deployed process model: no bundled fake gateway, no demo
# admin, every secret required, `check --deploy` clean. `development` is `make run`.
APP_ENV = env.str("APP_ENV", default="development")
if APP_ENV not in ("development", "production"):
    raise ImproperlyConfigured(
        f"APP_ENV must be 'development' or 'production', not {APP_ENV!r}"
    )
PRODUCTION = APP_ENV == "production"

# Where every process of a local run keeps its files (SQLite, embedded broker, locks).
RUN_DIR = Path(env.str("RUN_DIR", default=str(BASE_DIR / ".run")))
RUN_DIR.mkdir(parents=True, exist_ok=True)
