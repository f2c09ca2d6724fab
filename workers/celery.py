"""The Celery application. Configuration lives in settings/celery.py (CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

from ledger.logcontext import payout_id_var, request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")

app = Celery("payouts", include=["workers.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


@task_prerun.connect
def _bind_log_context(task_id: str, task: Any, args: Any = None, **_: Any) -> None:
    # Celery's own log lines about a payout task then carry its payout id too.
    payout_id_var.set(str(args[0]) if args else "")
    request_id_var.set(task_id)


@task_postrun.connect
def _clear_log_context(**_: Any) -> None:
    payout_id_var.set("")
    request_id_var.set("")
