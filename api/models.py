"""API keys for machine clients: stored hashed, shown once, revocable."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PREFIX_LENGTH = 12  # "pl_" and 9 random characters: not secret, shown in the admin


def hash_secret(key: str) -> str:
    # A key carries 256 bits of randomness, so a fast hash is enough (no guessing).
    return hashlib.sha256(key.encode()).hexdigest()


class RecentlyValid:
    """Keys found valid in the last API_KEY_CACHE_SECONDS, in this process.

    A request with such a key costs no query; the price is that a revocation (or a
    deactivated user) takes up to that long to reach every other process. Expiry is
    checked on every request, and revoking in this process takes effect at once.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, hashed: str) -> ApiKey | None:
        entry = self._entries.get(hashed)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, hashed: str, key: ApiKey) -> None:
        seconds = settings.API_KEY_CACHE_SECONDS
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()  # rare: a bound, not an eviction policy
            self._entries[hashed] = (time.monotonic() + seconds, key)

    def forget(self, hashed: str) -> None:
        with self._lock:
            self._entries.pop(hashed, None)


recently_valid = RecentlyValid()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)

    def usable(self) -> ApiKeyQuerySet:
        """Neither revoked nor past its expiry."""
        return self.active().filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Refused from this time on; empty for a key that does not expire.",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @classmethod
    def issue(
        cls, user: User, name: str = "", expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; the plain key is returned once and never stored."""
        prefix = "pl_" + secrets.token_hex(PREFIX_LENGTH)[: PREFIX_LENGTH - 3]
        plain = f"{prefix}.{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            hashed_key=hash_secret(plain),
            expires_at=expires_at,
        )
        return key, plain

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
        recently_valid.forget(self.hashed_key)
