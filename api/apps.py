from __future__ import annotations

from django.apps import AppConfig

from api import checks  # noqa: F401  (importing it registers our deploy checks)


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the failed-authentication marker before the first login fails.
        from api import lockout  # noqa: F401
