"""The composition root of the ledger: one Payouts application per process.

The only module of `ledger/` that knows Django, to read its settings. The application
is built lazily and per PID: a psycopg pool inherited through fork (gunicorn, Celery
prefork) is broken, and closing it in the child would end the parent's sessions.
"""

from __future__ import annotations

import os
import threading
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from ledger.application import Payouts
from ledger.errors import UnsafeConfiguration
from ledger.values import MoneyPolicy

_lock = threading.Lock()
_instance: tuple[int, Payouts] | None = None
# Instances inherited through fork are kept referenced forever: if the garbage
# collector finalised one, its pool would close the parent's connections.
_inherited: list[Payouts] = []


def build_payouts() -> Payouts:
    env = dict(settings.EVENT_STORE)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        # Follow Django's database name, so tests write to the test database.
        env["POSTGRES_DBNAME"] = connections["default"].settings_dict["NAME"]
    try:
        return Payouts(env=env, policy=money_policy())
    except UnsafeConfiguration as unsafe:
        raise ImproperlyConfigured(str(unsafe)) from None


def money_policy() -> MoneyPolicy:
    currencies = frozenset(settings.LEDGER["CURRENCIES"]) or None
    return MoneyPolicy(
        currencies=currencies, max_amount=Decimal(settings.LEDGER["MAX_AMOUNT"])
    )


def get_payouts() -> Payouts:
    global _instance
    pid = os.getpid()
    current = _instance
    if current is not None and current[0] == pid:
        return current[1]
    with _lock:
        if _instance is None or _instance[0] != pid:
            if _instance is not None:
                _inherited.append(_instance[1])
            _instance = (pid, build_payouts())
        return _instance[1]


def reset_payouts() -> None:
    """Forget this process's application (tests that switch databases)."""
    global _instance
    with _lock:
        if _instance is not None and _instance[0] == os.getpid():
            _instance[1].close()
        _instance = None
