"""One error shape everywhere: RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from eventsourcing import persistence
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api.lockout import AuthenticationLocked
from ledger.errors import (
    ConcurrencyExhausted,
    InvalidRequest,
    InvalidTransition,
    InvalidValue,
    PayoutNotFound,
    RequestMismatch,
    VersionMismatch,
)
from ledger.logcontext import request_id_var

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://payout-ledger.example/problems/"

_TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    503: "Service unavailable",
    429: "Too many requests",
    500: "Internal server error",
}


def problem(
    status_code: int,
    code: str,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
        "errors": errors or {},
    }
    if request_id_var.get():
        body["request_id"] = request_id_var.get()
    body.update(extra)
    return body


class ProblemResponse(Response):
    def __init__(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body, status=body["status"], headers=headers)
        self.content_type = PROBLEM_CONTENT_TYPE


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field.sub": [messages]}; top-level as "non_field_errors"."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, name))
        return out
    if (
        isinstance(detail, list)
        and detail
        and all(isinstance(d, dict | list) for d in detail)
    ):
        out = {}
        for index, value in enumerate(detail):
            out.update(flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(m) for m in messages]}


def transition_problem(exc: InvalidTransition) -> dict[str, Any]:
    return problem(
        409,
        "invalid_transition",
        str(exc),
        current_status=exc.current_status,
        requested_status=exc.target_status,
        allowed_transitions=exc.allowed_transitions,
    )


def _ledger_problem(exc: Exception) -> dict[str, Any] | None:
    if isinstance(exc, InvalidRequest):
        return problem(
            400,
            "validation_error",
            "The request has invalid fields.",
            errors=exc.errors,
        )
    if isinstance(exc, InvalidValue):
        return problem(
            400,
            "validation_error",
            "The request has invalid fields.",
            errors={exc.field: [exc.message]},
        )
    if isinstance(exc, PayoutNotFound):
        return problem(404, "not_found", "No payout with this id.")
    if isinstance(exc, InvalidTransition):
        return transition_problem(exc)
    if isinstance(exc, VersionMismatch):
        return problem(
            412,
            "precondition_failed",
            f"If-Match names version {exc.expected}; the payout is at version {exc.actual}.",
            current_version=exc.actual,
        )
    if isinstance(exc, RequestMismatch):
        return problem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    if isinstance(exc, ConcurrencyExhausted):
        return problem(
            409, "concurrent_update", "The payout is being changed concurrently; retry."
        )
    return None


_STORE_UNAVAILABLE = (
    persistence.OperationalError,
    persistence.InterfaceError,
    db.OperationalError,
    db.InterfaceError,
)

_DRF_CODES = {
    AuthenticationLocked: "authentication_locked",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def problem_exception_handler(
    exc: Exception, context: dict[str, Any]
) -> Response | None:
    body = _ledger_problem(exc)
    if body is not None:
        return ProblemResponse(body)
    if isinstance(exc, _STORE_UNAVAILABLE):
        # The database is restarting or unreachable. A write may still have landed
        # (its commit acknowledgement can be what was lost), so the outcome is
        # unknown: only a retry with the same Idempotency-Key is safe.
        logger.warning("storage unavailable: %s", type(exc).__name__)
        request = context.get("request")
        writing = request is not None and request.method not in (
            "GET",
            "HEAD",
            "OPTIONS",
        )
        detail = (
            "Storage is briefly unavailable, and the outcome of this request is "
            "unknown: it may or may not have been applied. Retry with the same "
            "Idempotency-Key: a payout that was stored is returned, one that was not "
            "is stored once."
            if writing
            else "Storage is briefly unavailable; retry."
        )
        return ProblemResponse(
            problem(503, "service_unavailable", detail),
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let it surface as a 500, never swallow it
    if isinstance(exc, exceptions.ValidationError):
        body = problem(
            400,
            "validation_error",
            "The request has invalid fields.",
            errors=flatten(exc.detail),
        )
    else:
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), "error")
        shown = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = problem(response.status_code, code, str(shown))
    headers = {
        k: v
        for k, v in response.items()
        if k in ("WWW-Authenticate", "Retry-After", "Allow")
    }
    return ProblemResponse(body, headers=headers)


def _json_problem(body: dict[str, Any]) -> JsonResponse:
    return JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(problem(404, "not_found", f"No route for {request.path}."))


def server_error(request: HttpRequest) -> JsonResponse:
    return _json_problem(
        problem(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side.",
        )
    )


def bad_request(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _json_problem(
            problem(
                413,
                "request_too_large",
                f"The request body is larger than {limit / 1048576:g} MiB ({limit} bytes).",
            )
        )
    return _json_problem(
        problem(400, "bad_request", "The request could not be understood.")
    )


def permission_denied(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    return _json_problem(problem(403, "permission_denied", "Forbidden."))
