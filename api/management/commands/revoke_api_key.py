"""manage.py revoke_api_key PREFIX"""

from __future__ import annotations

from typing import Any

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
        self.stdout.write(
            f"{prefix} {'was already revoked' if already else 'revoked'}."
        )
