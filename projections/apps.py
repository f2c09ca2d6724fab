from __future__ import annotations

from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "projections"
    verbose_name = "Ledger"
    default_auto_field = "django.db.models.BigAutoField"
