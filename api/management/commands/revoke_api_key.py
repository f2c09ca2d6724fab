"""manage.py revoke_api_key PREFIX"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import ApiKey


class Command(BaseCommand):
    help = "Revoke the API key with this prefix (the part before the dot)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].split(".", 1)[0]
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"No API key with prefix {prefix!r}.")
        already = not key.is_active
        key.revoke()
        if not already:
            # Servers trust a key they found valid for this long: once this returns,
            # every one of them refuses it.
            time.sleep(settings.API_KEY_CACHE_SECONDS)
        self.stdout.write(
            f"{prefix} {'was already revoked' if already else 'revoked'}."
        )
