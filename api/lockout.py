"""Failed authentications, throttled per client address and per username (django-axes).

django-axes counts the failures (Django's `user_login_failed` signal) and refuses a
locked-out login in its backend, which comes before the password-checking one. The
API's own authentication classes ask the same question before they look at a
password or key, so a brute-force loop gets a 429 instead of a hash comparison.

That question costs two queries; with Redis, a marker per address and per username,
set on every failure for as long as it counts, lets a request that nobody has failed
for skip them: the answer is the same, one Redis read instead of the database.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from rest_framework import exceptions

from api.throttling import shared_redis

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, for logins that come with a request.

    Every login over the network does (the admin's form, DRF's Basic); one without a
    request is server-side code (tests' client.login, a shell), which has no client
    address to count and nothing to brute-force.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_address(request: HttpRequest) -> str | None:
    """The socket address, or the one TRUSTED_PROXY_HOPS proxies of ours saw."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        # Each proxy appends the address it saw: the entry `hops` from the right was
        # written by our outermost proxy; anything left of it is the client's say.
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR")


def retry_after() -> int:
    return settings.AUTH_LOCKOUT_SECONDS


def _detail() -> str:
    return (
        "Too many failed authentications from this address or for this user; "
        f"try again in {retry_after()} seconds."
    )


class AuthenticationLocked(exceptions.Throttled):
    """Too many failed authentications: refused before any credential is checked."""

    default_detail = (
        "Too many failed authentications from this address or for this user."
    )


def _django_request(request: Any) -> HttpRequest:
    # DRF's Request proxies reads to the HttpRequest, but axes stores its findings
    # as attributes: keep them on the one request the middleware also sees.
    return getattr(request, "_request", request)


def _marker_keys(request: Any, username: str | None) -> list[str]:
    address = client_address(_django_request(request)) or "-"
    return [f"authfail:ip:{address}", f"authfail:user:{username or '-'}"]


def _no_recent_failures(request: Any, username: str) -> bool:
    """True only when the shared cache says no failure came from this address or for
    this username within the lockout time: then nobody can be locked out, and the
    database need not be asked. Any doubt (no shared cache, Redis down) says False."""
    client = shared_redis()
    if client is None:
        return False  # an in-process cache sees only its own process's failures
    names = [cache.make_and_validate_key(k) for k in _marker_keys(request, username)]
    try:
        return client.exists(*names) == 0
    except Exception:
        return False


@receiver(user_login_failed, dispatch_uid="api.lockout.mark_failure")
def mark_failure(sender: object, credentials: dict[str, Any], **kwargs: Any) -> None:
    """Every failure (Basic, API key, the admin's login) leaves a marker that lives
    as long as the failure counts; django-axes keeps the count itself."""
    request = kwargs.get("request")
    if request is None or shared_redis() is None:
        return
    keys = _marker_keys(request, credentials.get("username"))
    try:
        cache.set_many(dict.fromkeys(keys, 1), timeout=settings.AUTH_LOCKOUT_SECONDS)
    except Exception:
        logger.warning("could not mark a failed authentication", exc_info=True)


def refuse_if_locked(request: Any, username: str) -> None:
    if _no_recent_failures(request, username):
        return
    if not AxesProxyHandler.is_allowed(
        _django_request(request), {"username": username}
    ):
        raise AuthenticationLocked(wait=retry_after())


def record_failure(request: Any, username: str, sender: type) -> None:
    """Count a failure that did not go through django.contrib.auth.authenticate()."""
    user_login_failed.send(
        sender=sender,
        credentials={"username": username},
        request=_django_request(request),
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """What axes answers for a locked-out login: a 429 problem, or a page for people."""
    # Here, not at the top: api.exceptions imports DRF's views, which import the
    # authentication classes that import this module.
    from api.exceptions import PROBLEM_CONTENT_TYPE, problem

    headers = {"Retry-After": str(retry_after())}
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        return JsonResponse(
            problem(429, "authentication_locked", _detail()),
            status=429,
            content_type=PROBLEM_CONTENT_TYPE,
            headers=headers,
        )
    return HttpResponse(
        f"<!doctype html><title>Too many attempts</title><p>{_detail()}</p>",
        status=429,
        content_type="text/html; charset=utf-8",
        headers=headers,
    )
