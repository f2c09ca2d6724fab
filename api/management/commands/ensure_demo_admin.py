"""manage.py ensure_demo_admin: the demo operator account of `make run`, and its password."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from api.permissions import AUDITORS_GROUP


class Command(BaseCommand):
    help = "Create (or reset) the demo admin and print its credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            self.stdout.write("APP_ENV=production: no demo admin is created")
            return
        Group.objects.get_or_create(name=AUDITORS_GROUP)
        secret_file = Path(settings.RUN_DIR) / "demo-admin-password"
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(12))
            secret_file.chmod(0o600)
        password = secret_file.read_text().strip()
        username = settings.DEMO_ADMIN_USERNAME
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Demo admin: username {username}  password {password}")
