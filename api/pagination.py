"""Keyset (cursor) pagination over (ordering field, id): stable under inserts, and
every page is an index range scan however deep the client pages."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db.models import Q
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.views import APIView

ORDERING_FIELDS = ("created_at", "amount", "updated_at")
DEFAULT_ORDERING = "-created_at"


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    # Digits only: int() also takes " 5", "+5", "5_0" and other scripts' digits.
    limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    if not 1 <= limit <= maximum:
        raise ValidationError({"limit": [f"Must be an integer from 1 to {maximum}."]})
    return limit


@dataclass(frozen=True)
class Cursor:
    ordering: str
    value: str
    id: str
    forward: bool

    def encode(self) -> str:
        raw = json.dumps([self.ordering, self.value, self.id, self.forward])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, ordering: str) -> Cursor:
        # A cursor this service wrote is a few hundred characters; anything larger,
        # or nested, is not one (and a deep nest would make json recurse).
        if len(token) > MAX_CURSOR:
            raise ValidationError({"cursor": ["Invalid cursor."]})
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            name, value, ident, forward = json.loads(raw)
            cursor = cls(str(name), str(value), str(UUID(str(ident))), bool(forward))
        except (ValueError, TypeError, RecursionError):
            raise ValidationError({"cursor": ["Invalid cursor."]}) from None
        if cursor.ordering != ordering:
            raise ValidationError(
                {
                    "cursor": [
                        "This cursor belongs to another ordering; start again without it."
                    ]
                }
            )
        return cursor


MAX_CURSOR = 512


class KeysetPagination(BasePagination):
    default_limit = 50
    max_limit = 200

    # Narrower than DRF's method, which may also be given a plain sequence: a keyset
    # walk filters and orders, so it takes a QuerySet only (every view using it has one).
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.read_parameters(request)
        forward = self.forward
        # Walking backwards is walking forwards in the reversed order.
        descending = self.descending if forward else not self.descending
        rows = list(self.walk(queryset, descending)[: self.limit + 1])
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        if not forward:
            rows.reverse()
        self.rows = rows
        # Forward: a next page exists if we fetched one extra; a previous one if we
        # came through a cursor. Backward: the mirror image.
        self.has_next = more if forward else bool(rows)
        self.has_previous = (
            (self.cursor is not None and bool(rows)) if forward else more
        )
        return rows

    def read_parameters(self, request: Request) -> None:
        """`limit`, `ordering` and `cursor`, each checked (a 400 names the bad one)."""
        self.request = request
        self.limit = parse_limit(
            request.query_params.get("limit"),
            default=self.default_limit,
            maximum=self.max_limit,
        )
        self.ordering = request.query_params.get("ordering") or DEFAULT_ORDERING
        field = self.ordering.lstrip("-")
        if field not in ORDERING_FIELDS or self.ordering.count("-") > 1:
            choices = ", ".join(f"{f}, -{f}" for f in ORDERING_FIELDS)
            raise ValidationError({"ordering": [f"Must be one of {choices}."]})
        self.field, self.descending = field, self.ordering.startswith("-")
        token = request.query_params.get("cursor")
        self.cursor = Cursor.decode(token, self.ordering) if token else None
        self.forward = self.cursor.forward if self.cursor else True

    def walk(self, queryset: QuerySet[Any], descending: bool) -> QuerySet[Any]:
        """The rows past the cursor (if any), in this direction."""
        queryset = self.order(queryset, descending)
        if self.cursor:
            value = self._value(self.cursor.value)
            queryset = self.beyond(queryset, descending, value, self.cursor.id)
        return queryset

    def order(self, queryset: QuerySet[Any], descending: bool) -> QuerySet[Any]:
        direction = "-" if descending else ""
        return queryset.order_by(f"{direction}{self.field}", f"{direction}id")

    def beyond(
        self, queryset: QuerySet[Any], descending: bool, value: Any, ident: Any
    ) -> QuerySet[Any]:
        """The rows strictly after (value, id) in this direction."""
        past = "lt" if descending else "gt"
        return queryset.filter(
            Q(**{f"{self.field}__{past}": value})
            | Q(**{self.field: value, f"id__{past}": ident})
        )

    def _value(self, raw: str) -> Any:
        # A cursor is client input: a tampered one is a 400, never a 500.
        try:
            if self.field == "amount":
                value: Any = Decimal(raw)
                valid = value.is_finite() and abs(value.adjusted()) <= 24
            else:
                value = datetime.fromisoformat(raw)
                valid = value.tzinfo is not None
                value = value.astimezone(UTC) if valid else value
        except (ValueError, ArithmeticError):
            valid = False
        if not valid:
            raise ValidationError({"cursor": ["Invalid cursor."]})
        return value

    def _link(self, row: Any, forward: bool) -> str:
        value = getattr(row, self.field)
        cursor = Cursor(
            self.ordering,
            value.isoformat() if isinstance(value, datetime) else str(value),
            str(row.id),
            forward,
        )
        url = self.request.build_absolute_uri()
        return replace_query_param(url, "cursor", cursor.encode())

    def get_next_link(self) -> str | None:
        return self._link(self.rows[-1], True) if self.has_next and self.rows else None

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.rows:
            return None
        return self._link(self.rows[0], False)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque cursor from `next` or `previous`.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Page size, 1 to {self.max_limit} (default {self.default_limit}); "
                "outside that range: 400.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_limit,
                    "default": self.default_limit,
                },
            },
            {
                "name": "ordering",
                "in": "query",
                "required": False,
                "description": "`created_at`, `amount` or `updated_at`; `-` for descending.",
                "schema": {
                    "type": "string",
                    "enum": [p + f for f in ORDERING_FIELDS for p in ("", "-")],
                    "default": DEFAULT_ORDERING,
                },
            },
        ]
