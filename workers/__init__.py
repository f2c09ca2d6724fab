"""Celery workers, the log dispatcher and the payment gateway adapters.

`celery -A workers worker` finds the app here.
"""

from __future__ import annotations

from workers.celery import app

__all__ = ["app"]
