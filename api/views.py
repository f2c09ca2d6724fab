"""HTTP adapters: parse, call one ledger method or selector, render."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from api import schema
from api.asof import AS_OF_HELP, parse_as_of, payouts_as_of
from api.filters import PayoutFilter
from api.idempotency import fingerprint, legacy_fingerprint
from api.pagination import KeysetPagination, parse_limit
from api.permissions import IsStaffOrAuditorReadOnly
from api.serializers import (
    FeedEntryOutput,
    HistoryEntryOutput,
    PayoutCreateInput,
    PayoutOutput,
    PayoutUpdateInput,
)
from ledger.application import NewPayout
from ledger.apps import get_payouts
from ledger.payout import Actor
from projections.selectors import payout_list

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from rest_framework.request import Request
    from rest_framework.serializers import ListSerializer

    from ledger.records import EventRecord, PayoutSnapshot

MAX_VERSION = 999_999_999
_IF_MATCH = re.compile(schema.IF_MATCH_PATTERN)


def actor_of(request: Request) -> Actor:
    request_id = getattr(request._request, "request_id", "")
    prefix = getattr(request.auth, "prefix", None)
    if prefix:
        return Actor("api_key", prefix, request_id)
    return Actor("user", request.user.get_username(), request_id)


def payout_response(
    payout: PayoutSnapshot, status_code: int = 200, **headers: str
) -> Response:
    return Response(
        PayoutOutput(payout).data,
        status=status_code,
        headers={"ETag": f'"{payout.version}"', **headers},
    )


def expected_version(request: Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = _IF_MATCH.fullmatch(header.strip(" \t"))
    if not match:
        raise ValidationError(
            {"If-Match": ['Must be a version as an ETag, e.g. "2", or *.']}
        )
    version = match.group(3)
    return None if version is None else int(version)  # RFC 9110: "*" matches any


class PayoutListCreateView(generics.ListAPIView):
    permission_classes = [IsStaffOrAuditorReadOnly]
    serializer_class = PayoutOutput
    pagination_class = KeysetPagination
    filterset_class = PayoutFilter

    def get_queryset(self) -> Any:
        return payout_list()

    @extend_schema(
        operation_id="payouts_list",
        summary="List payouts",
        description="From the projection (eventually consistent, milliseconds behind the "
        "event store). Filters combine with AND.\n\n"
        "With `as_of`, the list as it was at that instant, replayed from the event "
        "store: the candidates are the payouts created at or before `as_of`, walked "
        "in the requested order (amount, currency and created_at filters apply to "
        "them in SQL: they never change); each is replayed at `as_of`, **one event "
        "stream read per candidate**, and `status` is matched against the replayed "
        "status; `version`, `status`, `failure_reason` and `updated_at` are those at "
        "`as_of`. A request replays at most `AS_OF_SCAN_LIMIT` candidates (default "
        "1000): when a sparse `status` filter reaches that limit, the page is short "
        "(possibly empty) and `next` continues from the last candidate looked at; "
        "follow `next` until it is `null`. `ordering=updated_at` with `as_of` is a "
        "400 (the replayed `updated_at` has no index to walk); `created_at` and "
        "`amount` orderings work.",
        parameters=[
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                description="RFC 3339 with a time zone: the list as it was then, "
                "replayed from the event store (at most `AS_OF_SCAN_LIMIT`, default "
                "1000, payouts replayed per request).",
            ),
        ],
        responses={200: PayoutOutput(many=True), **schema.errors(400, 401, 403, 429)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        as_of = parse_as_of(request.query_params.get("as_of"))
        if as_of is not None:
            return payouts_as_of(request, as_of)
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="payouts_create",
        summary="Create a payout",
        description="Stores `Created` and answers 201 at once (status `pending`); "
        "processing happens in the background and never delays the response. "
        "With an `Idempotency-Key`, the same key and body replay the original answer "
        "(header `Idempotent-Replayed: true`); another body is a 422. Keys are scoped "
        "to the calling user and never expire.",
        request=PayoutCreateInput,
        parameters=[schema.IDEMPOTENCY_KEY],
        examples=schema.CREATE_EXAMPLES,
        responses={
            201: PayoutOutput,
            **schema.errors(400, 401, 403, 409, 413, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= schema.MAX_IDEMPOTENCY_KEY:
            message = f"Must be 1 to {schema.MAX_IDEMPOTENCY_KEY} characters."
            raise ValidationError({"Idempotency-Key": [message]})
        payload = PayoutCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        outcome = get_payouts().create_payout(
            NewPayout(
                amount=data["amount"],
                currency=data["currency"],
                recipient=data["recipient_details"],
                description=data["description"],
            ),
            actor=actor_of(request),
            scope=str(request.user.pk),
            idempotency_key=key,
            request_fingerprint=fingerprint(request.data) if key else None,
            legacy_fingerprint=legacy_fingerprint(request.data) if key else None,
        )
        headers = {"Location": f"/api/v1/payouts/{outcome.payout.id}/"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return payout_response(outcome.payout, status.HTTP_201_CREATED, **headers)


class PayoutDetailView(APIView):
    permission_classes = [IsStaffOrAuditorReadOnly]

    @extend_schema(
        operation_id="payouts_retrieve",
        summary="Read a payout",
        description="Read from the event store, so it reflects a write as soon as its "
        "response was sent. `version` or `as_of` replay the payout to that point; both "
        "together give the state at that version if it existed by then.",
        parameters=[
            schema.integer_query(
                "version",
                minimum=1,
                maximum=MAX_VERSION,
                description="A version to replay to (>= 1).",
            ),
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                description=AS_OF_HELP,
            ),
        ],
        responses={200: PayoutOutput, **schema.errors(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, payout_id: UUID) -> Response:
        version, as_of = None, None
        errors: dict[str, list[str]] = {}
        if (raw := request.query_params.get("version")) is not None:
            if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_VERSION)):
                version = int(raw)
            else:
                errors["version"] = ["Must be a positive integer."]
        try:
            as_of = parse_as_of(request.query_params.get("as_of"))
        except ValidationError as exc:
            # parse_as_of raises with a dict of messages: {"as_of": [...]}.
            errors.update(cast("dict[str, list[str]]", exc.detail))
        if errors:
            raise ValidationError(errors)
        payout = get_payouts().get_payout(payout_id, version=version, as_of=as_of)
        return payout_response(payout)

    @extend_schema(
        operation_id="payouts_partial_update",
        summary="Cancel a payout",
        description='Only `{"status": "cancelled"}` is a change a client may ask for; it '
        "succeeds on a pending payout, and on an already cancelled one (no new event). "
        "Any other change is a 409 naming `current_status` and `allowed_transitions` "
        "(the state machine's next statuses). `If-Match` is checked before anything "
        "else about the payout's state: a stale version is a 412.",
        request=PayoutUpdateInput,
        parameters=[schema.IF_MATCH],
        responses={
            200: PayoutOutput,
            **schema.errors(400, 401, 403, 404, 409, 412, 413, 429),
        },
    )
    def patch(self, request: Request, payout_id: UUID) -> Response:
        payload = PayoutUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        payout = get_payouts().request_status(
            payout_id,
            payload.validated_data["status"],
            reason=payload.validated_data["reason"],
            actor=actor_of(request),
            expected_version=expected_version(request),
        )
        return payout_response(payout)

    @extend_schema(
        operation_id="payouts_destroy",
        summary="Cancel a pending payout",
        description="Records `Cancelled`; nothing is erased. Idempotent on an already "
        "cancelled payout. `processing`, `completed` and `failed` payouts: 409.",
        parameters=[schema.IF_MATCH],
        responses={204: None, **schema.errors(400, 401, 403, 404, 409, 412, 429)},
    )
    def delete(self, request: Request, payout_id: UUID) -> Response:
        get_payouts().cancel(
            payout_id,
            reason="",
            actor=actor_of(request),
            expected_version=expected_version(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _history_entry(record: EventRecord) -> dict[str, Any]:
    return {
        "position": record.position,
        "payout_id": record.payout_id,
        "version": record.version,
        "type": record.type,
        "occurred_at": record.occurred_at,
        "actor": record.actor,
        "request_id": record.request_id,
        "data": record.data,
        "previous_hash": record.previous_hash,
        "hash": record.hash,
    }


class PayoutHistoryView(APIView):
    permission_classes = [IsStaffOrAuditorReadOnly]

    @extend_schema(
        operation_id="payouts_history",
        summary="A payout's events, in order",
        responses={
            200: HistoryEntryOutput(many=True),
            **schema.errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, payout_id: UUID) -> Response:
        records = get_payouts().history(payout_id)
        return Response(
            HistoryEntryOutput([_history_entry(r) for r in records], many=True).data
        )


class NDJSONRenderer(BaseRenderer):
    media_type = "application/x-ndjson"
    format = "ndjson"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        return json.dumps(data).encode() + b"\n"


def _ndjson(records: Iterable[EventRecord], batch: int) -> Iterator[bytes]:
    """Feed entries as NDJSON, one chunk per `batch` records: memory stays bounded."""
    chunk: list[EventRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == batch:
            yield _ndjson_lines(chunk)
            chunk = []
    if chunk:
        yield _ndjson_lines(chunk)


def _ndjson_lines(records: list[EventRecord]) -> bytes:
    # many=True makes a ListSerializer (BaseSerializer.__new__); the stubs type it as
    # the class called.
    entries = cast(
        "ListSerializer[dict[str, Any]]",
        FeedEntryOutput([_history_entry(r) for r in records], many=True),
    ).data
    return b"".join(json.dumps(entry).encode() + b"\n" for entry in entries)


class EventFeedView(APIView):
    permission_classes = [IsStaffOrAuditorReadOnly]
    renderer_classes = [JSONRenderer, NDJSONRenderer]
    max_limit = 1000
    default_limit = 100

    @extend_schema(
        operation_id="events_list",
        summary="The global event feed, in commit order",
        description="Positions only grow and commit in order, so paging with "
        "`after=<last position seen>` never skips or repeats an event. A JSON array; "
        "with `Accept: application/x-ndjson`, one JSON object per line, streamed. "
        "The `Link` header names the next page.\n\n"
        "NDJSON only: `limit=all` streams every event after `after` that was "
        "committed when the request began, read from the store in batches of "
        "`EVENT_FEED_BATCH` (default 500), in constant memory however long the feed; "
        "no `Link` header (there is no next page: go on with `after=<last position>`). "
        "`limit=all` with JSON is a 400.",
        parameters=[
            schema.integer_query(
                "after",
                minimum=0,
                maximum=schema.MAX_POSITION,
                description="Position to start after (default 0).",
            ),
            OpenApiParameter(
                "limit",
                {
                    "oneOf": [
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        {"type": "string", "enum": ["all"]},
                    ],
                    "default": 100,
                },
                description="1 to 1000 (default 100); `all` with NDJSON only.",
            ),
        ],
        responses={
            (200, "application/json"): FeedEntryOutput(many=True),
            (200, "application/x-ndjson"): OpenApiResponse(
                response=FeedEntryOutput, description="One FeedEntry per line."
            ),
            **schema.errors(400, 401, 403, 406, 429),
        },
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        raw_after = request.query_params.get("after") or "0"
        if (
            not (raw_after.isascii() and raw_after.isdigit())
            or len(raw_after) > schema.POSITION_DIGITS
        ):
            raise ValidationError(
                {"after": ["Must be a non-negative integer position."]}
            )
        after = int(raw_after)
        ndjson = request.accepted_renderer.format == "ndjson"
        raw_limit = request.query_params.get("limit")
        if raw_limit == "all":
            if not ndjson:
                raise ValidationError(
                    {
                        "limit": [
                            "`all` is for NDJSON only (Accept: application/x-ndjson); "
                            f"JSON pages hold 1 to {self.max_limit} events."
                        ]
                    }
                )
            batch = settings.EVENT_FEED_BATCH
            records = get_payouts().iter_feed(after=after, batch=batch)
            return StreamingHttpResponse(
                _ndjson(records, batch), content_type="application/x-ndjson"
            )
        limit = parse_limit(
            raw_limit, default=self.default_limit, maximum=self.max_limit
        )
        page = get_payouts().feed(after=after, limit=limit)
        headers = {}
        if len(page) == limit:
            next_url = replace_query_param(
                request.build_absolute_uri(), "after", str(page[-1].position)
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        if ndjson:
            response = StreamingHttpResponse(
                _ndjson(page, limit), content_type="application/x-ndjson"
            )
            for name, value in headers.items():
                response[name] = value
            return response
        entries = FeedEntryOutput([_history_entry(r) for r in page], many=True).data
        return Response(entries, headers=headers)
