"""`Authorization: Bearer <key>` for machine clients, and HTTP Basic, both refusing a
locked-out client (api.lockout) before any key or password is compared."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.utils import timezone
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.lockout import record_failure, refuse_if_locked
from api.models import PREFIX_LENGTH, ApiKey, hash_secret, recently_valid

if TYPE_CHECKING:
    from rest_framework.request import Request

_TOUCH_EVERY = timedelta(minutes=5)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Bearer credentials.")
        try:
            plain = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "Malformed Bearer credentials."
            ) from None
        # The prefix is not secret: it is what failures are counted under, as a
        # username is for passwords.
        prefix = plain.partition(".")[0][:PREFIX_LENGTH]
        refuse_if_locked(request, prefix)
        hashed = hash_secret(plain)
        key = recently_valid.get(hashed)
        if key is None:
            key = (
                ApiKey.objects.usable()
                .select_related("user")
                .filter(hashed_key=hashed)
                .first()
            )
            if key is not None and key.user.is_active:
                recently_valid.put(hashed, key)
        now = timezone.now()
        if key is None or not key.user.is_active or key.is_expired:
            record_failure(request, prefix, type(self))
            raise exceptions.AuthenticationFailed(
                "Invalid, expired or revoked API key."
            )
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            # Coarse on purpose: a write per request would serialise on this row.
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's Basic, asking first whether this address or username is locked out.

    A failure is counted by django-axes through the `user_login_failed` signal that
    django.contrib.auth.authenticate() sends.
    """

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[object, None]:
        if request is not None:
            refuse_if_locked(request, userid)
        # The HttpRequest, not DRF's wrapper: django-axes marks the lockout on it, and
        # its middleware answers the failure that reaches the limit with the 429.
        return super().authenticate_credentials(
            userid, password, getattr(request, "_request", request)
        )


class LockedBasicScheme(BasicScheme):
    target_class = "api.authentication.BasicAuthentication"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pl_xxxxxxxxx.<secret>",
        }
