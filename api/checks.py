"""`manage.py check --deploy` checks of our own settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

W_METRICS_OPEN = "payouts.W001"


@checks.register(checks.Tags.security, deploy=True)
def metrics_token_set(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """In production, /metrics should not be open to whoever reaches the service:
    it tells payout volumes by status. A deployment that scrapes over a private
    network only may silence this (SILENCED_SYSTEM_CHECKS)."""
    if not settings.PRODUCTION or settings.METRICS_TOKEN:
        return []
    return [
        checks.Warning(
            "METRICS_TOKEN is not set: /metrics answers anyone who can reach it.",
            hint="Set METRICS_TOKEN and scrape with `Authorization: Bearer <token>`.",
            id=W_METRICS_OPEN,
        )
    ]
