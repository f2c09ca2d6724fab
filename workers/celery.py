"""The Celery application. Configuration lives in settings/celery.py (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")

app = Celery("payouts", include=["workers.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
