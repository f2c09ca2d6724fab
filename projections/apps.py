from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ledger.storage import unsafe_options
from projections.signing import SigningKeyError, parse_public_keys


class ProjectionsConfig(AppConfig):
    name = "projections"
    verbose_name = "Ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # settings/eventstore.py refuses it from the environment; this catches a
        # settings module that puts it into EVENT_STORE, before any process runs.
        if unsafe := unsafe_options(settings.EVENT_STORE):
            raise ImproperlyConfigured(
                f"EVENT_STORE: {', '.join(unsafe)} must not be on: the projector and "
                "dispatcher rely on the event store's insert lock to never skip."
            )
        checks.register(check_public_key)


def check_public_key(**_: Any) -> list[checks.CheckMessage]:
    """A malformed CHECKPOINT_PUBLIC_KEY would only show at the next verify_ledger."""
    try:
        parse_public_keys(settings.CHECKPOINT_PUBLIC_KEY)
    except SigningKeyError as exc:
        return [checks.Error(f"CHECKPOINT_PUBLIC_KEY: {exc}", id="projections.E001")]
    return []
