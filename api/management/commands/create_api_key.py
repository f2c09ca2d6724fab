"""manage.py create_api_key USERNAME [--name NAME] [--expires-in DAYS]: prints the key
once, on its last line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from api.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a user. The key is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the key is for")
        parser.add_argument(
            "--expires-in",
            type=int,
            metavar="DAYS",
            help="refuse the key this many days from now (default: no expiry)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["username"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        days = options["expires_in"]
        if days is not None and days < 1:
            raise CommandError(
                "--expires-in must be a whole number of days, 1 or more."
            )
        expires_at = timezone.now() + timedelta(days=days) if days else None
        key, plain = ApiKey.issue(user, options["name"], expires_at)
        until = f", valid until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stderr.write(
            f"Created key {key.prefix} for {user.get_username()}{until}; "
            "store it now, it is not shown again."
        )
        self.stdout.write(plain)
