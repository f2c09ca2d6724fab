"""The only reader of the process environment (and of an optional `.env` file)."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (created by `make run` on first start) fills in what the real
# environment leaves unset; real environment variables always win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Where every process of a local run keeps its files (SQLite, embedded broker, locks).
RUN_DIR = Path(env.str("RUN_DIR", default=str(BASE_DIR / ".run")))
RUN_DIR.mkdir(parents=True, exist_ok=True)
