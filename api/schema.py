"""drf-spectacular extras shared by the views: headers, examples, error responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from api.serializers import (
    PreconditionProblemOutput,
    ProblemOutput,
    StrictSerializer,
    TransitionProblemOutput,
)
from ledger.values import PayoutStatus

# Query parameters whose views answer an empty value with a 400. For every other
# one an empty value is the parameter left out (django-filter's rule, and ours).
VALUE_REQUIRED = frozenset({"as_of", "version"})


class AutoSchema(openapi.AutoSchema):
    """What drf-spectacular cannot see in the code, said in the schema so that
    generators (schemathesis, client generators) send what the server accepts."""

    def _get_parameters(self) -> list[dict[str, Any]]:
        return [
            {**p, "allowEmptyValue": True}
            if p["in"] == "query" and p["name"] not in VALUE_REQUIRED
            else p
            for p in super()._get_parameters()
        ]

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False  # unknown fields are a 400
        return schema


# Said here and checked by the views, like IF_MATCH_PATTERN below.
MAX_IDEMPOTENCY_KEY = 255
# An event's position in the log: 18 digits fit PostgreSQL's bigint.
POSITION_DIGITS = 18
MAX_POSITION = 10**POSITION_DIGITS - 1

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=f"Up to {MAX_IDEMPOTENCY_KEY} characters, scoped to the caller. Same "
    "key and body: the original 201 is replayed with `Idempotent-Replayed: true`. "
    "Another body: 422.",
)
# ECMA-262 and Python read it alike; views.py checks If-Match with it (HTTP servers
# strip the whitespace around a header value, test clients may not).
IF_MATCH_PATTERN = r'^(\*|(W/)?"([0-9]{1,18})")$'
IF_MATCH = OpenApiParameter(
    "If-Match",
    {"type": "string", "pattern": IF_MATCH_PATTERN, "example": '"1"'},
    OpenApiParameter.HEADER,
    description='The version the change was decided on, as the ETag `"<version>"` '
    "(or `*`, any version); a stale one is a 412 whatever the payout's state.",
)


def integer_query(
    name: str,
    *,
    minimum: int,
    maximum: int,
    description: str = "",
    default: int | None = None,
) -> OpenApiParameter:
    """A query parameter the view parses as an integer within these bounds: said as
    a schema so that generators send only what the view accepts."""
    bounds: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        bounds["default"] = default
    return OpenApiParameter(name, bounds, description=description)


_DESCRIPTIONS = {
    400: "Invalid input: `errors` maps each bad field to its messages.",
    401: "No or bad credentials (see `WWW-Authenticate`).",
    403: "Authenticated, without the role this needs.",
    404: "No such payout, version or route.",
    405: "Method not allowed here.",
    406: "The `Accept` header names no format this endpoint serves.",
    409: "The state machine does not allow this change; see `current_status` and "
    "`allowed_transitions`.",
    412: "`If-Match` names a version that is no longer current.",
    413: "The request body is larger than 1 MiB; up to that, each field is checked.",
    422: "The `Idempotency-Key` was used before with a different body.",
    429: "Rate limit (API_THROTTLE_RATE per user) exceeded, or too many failed "
    "authentications from this address or for this username (code "
    "`authentication_locked`); see `Retry-After`.",
}
_BODIES = {409: TransitionProblemOutput, 412: PreconditionProblemOutput}


def errors(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    return {
        (code, "application/problem+json"): OpenApiResponse(
            response=_BODIES.get(code, ProblemOutput), description=_DESCRIPTIONS[code]
        )
        for code in codes
    }


_CARD: dict[str, Any] = {
    "amount": "1500.00",
    "currency": "EUR",
    "recipient_details": {
        "type": "card",
        "number": "4242424242424242",
        "holder": "Ada Lovelace",
    },
    "description": "Invoice 2026-118",
}
# The tests' bank account payout too (tests/builders.py), so the suite sends what the
# schema shows.
BANK_ACCOUNT_EXAMPLE: dict[str, Any] = {
    "amount": "250000",
    "currency": "JPY",
    "recipient_details": {
        "type": "bank_account",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "holder": "Grace Hopper",
    },
}
CREATE_EXAMPLES = [
    OpenApiExample("Card payout", value=_CARD, request_only=True),
    OpenApiExample(
        "Bank account payout", value=BANK_ACCOUNT_EXAMPLE, request_only=True
    ),
    OpenApiExample(
        "Created",
        value={
            "id": "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1",
            "amount": "1500.00",
            "currency": "EUR",
            "recipient_details": {
                "type": "card",
                "number": "424242******4242",
                "holder": "Ada Lovelace",
            },
            "description": "Invoice 2026-118",
            "status": PayoutStatus.PENDING.value,
            "failure_reason": None,
            "version": 1,
            "created_at": "2026-11-27T10:15:00.123456Z",
            "updated_at": "2026-11-27T10:15:00.123456Z",
        },
        response_only=True,
        status_codes=["201"],
    ),
]
