"""manage.py create_api_key USERNAME [--name NAME]: prints the key once, on its last line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a user. The key is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the key is for")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        key, plain = ApiKey.issue(user, options["name"])
        self.stderr.write(
            f"Created key {key.prefix} for {user.get_username()}; store it now, it is not shown again."
        )
        self.stdout.write(plain)
