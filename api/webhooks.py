"""Webhook endpoints and deliveries, for staff: register, update, rotate the signing
secret, list deliveries with every attempt, resend."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from api import schema
from api.exceptions import ProblemResponse, problem
from api.pagination import parse_limit
from api.permissions import IsStaff
from api.serializers import ProblemOutput, StrictSerializer
from webhooks import services
from webhooks.models import (
    MAX_TEXT,
    MAX_URL,
    WEBHOOK_EVENT_TYPES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.targets import UnsafeTarget, check_registration

if TYPE_CHECKING:
    from uuid import UUID

    from rest_framework.request import Request

MAX_OVERLAP = 30 * 24 * 3600


class WebhookUrlField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_length=MAX_URL,
            help_text="Where deliveries are POSTed: https (http outside production "
            "only when WEBHOOK_ALLOW_HTTP); loopback, private and link-local hosts "
            "are refused unless WEBHOOK_ALLOW_PRIVATE_TARGETS.",
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> str:
        url = super().to_internal_value(data)
        try:
            check_registration(url)
        except UnsafeTarget as exc:
            raise serializers.ValidationError(str(exc)) from None
        return url


def _event_types(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES),
        min_length=1,
        max_length=len(WEBHOOK_EVENT_TYPES),
        help_text="The events to receive.",
        **kwargs,
    )


class WebhookEndpointCreateInput(StrictSerializer):
    url = WebhookUrlField()
    event_types = _event_types(required=False, default=WEBHOOK_EVENT_TYPES)
    description = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True, default=""
    )


class WebhookEndpointUpdateInput(StrictSerializer):
    url = WebhookUrlField(required=False)
    event_types = _event_types(required=False)
    description = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True
    )
    enabled = serializers.BooleanField(
        required=False,
        help_text="`true` on a disabled endpoint resumes its deliveries, in order; "
        "those given up on get a new retry window.",
    )


class RotateSecretInput(StrictSerializer):
    overlap_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_OVERLAP,
        required=False,
        help_text="How long the previous secret keeps signing beside the new one "
        "(default WEBHOOK_SECRET_OVERLAP, 86400); 0 retires it at once.",
    )


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES)
    )
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField(
        help_text="Why it was disabled: by an operator, or a delivery that failed "
        "for the whole retry window."
    )
    consecutive_failures = serializers.IntegerField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Until then deliveries are signed with the previous secret too.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointSecretOutput(WebhookEndpointOutput):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_...`, Standard Webhooks). Shown only "
        "in this response: store it now."
    )


class WebhookAttemptOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.CharField()
    response_prefix = serializers.CharField(
        help_text="The first 1024 bytes of the answer at most."
    )


class WebhookDeliveryOutput(serializers.Serializer):
    id = serializers.CharField(
        help_text="The `webhook-id` of every attempt: deduplicate on it."
    )
    endpoint_id = serializers.UUIDField()
    payout_id = serializers.UUIDField()
    version = serializers.IntegerField()
    position = serializers.IntegerField()
    event_type = serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES)
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempt_count = serializers.IntegerField(source="attempts")
    next_attempt_at = serializers.DateTimeField()
    first_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    succeeded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    payload = serializers.SerializerMethodField()
    attempts = WebhookAttemptOutput(many=True, source="attempt_set.all")

    def get_payload(self, delivery: WebhookDelivery) -> dict[str, Any]:
        """The body sent (the payout masked)."""
        body: dict[str, Any] = json.loads(delivery.payload)
        return body


class WebhookDeliveryPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = WebhookDeliveryOutput(many=True)


def _body(request: Request, input_class: type[StrictSerializer]) -> dict[str, Any]:
    """The request body as `input_class` validates it; a 400 when it does not."""
    payload = input_class(data=request.data)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)


def _endpoint_and_body(
    request: Request, endpoint_id: UUID, input_class: type[StrictSerializer]
) -> tuple[WebhookEndpoint, dict[str, Any]]:
    # An unknown endpoint is a 404 whatever the body: it is looked up first.
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    return endpoint, _body(request, input_class)


def _endpoint(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    data = dict(WebhookEndpointOutput(endpoint).data)
    if secret is not None:
        data["secret"] = secret
    return data


class WebhookEndpointListView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List webhook endpoints",
        description="Every endpoint, oldest first, disabled ones included.",
        responses={
            200: WebhookEndpointOutput(many=True),
            **schema.errors(401, 403, 429),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            WebhookEndpointOutput(WebhookEndpoint.objects.all(), many=True).data
        )

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Register a webhook endpoint",
        description="The answer holds the signing secret, shown this once. Events "
        "after the registration are delivered; see the README, 'Webhooks'.",
        request=WebhookEndpointCreateInput,
        responses={
            201: WebhookEndpointSecretOutput,
            **schema.errors(400, 401, 403, 413, 429),
            (409, "application/problem+json"): OpenApiResponse(
                response=ProblemOutput,
                description="WEBHOOK_MAX_ENDPOINTS endpoints exist already.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = _body(request, WebhookEndpointCreateInput)
        if WebhookEndpoint.objects.count() >= settings.WEBHOOK_MAX_ENDPOINTS:
            return ProblemResponse(
                problem(
                    409,
                    "too_many_endpoints",
                    f"At most {settings.WEBHOOK_MAX_ENDPOINTS} webhook endpoints "
                    "(WEBHOOK_MAX_ENDPOINTS); delete one first.",
                )
            )
        endpoint, secret = services.endpoint_create(**data)
        return Response(
            _endpoint(endpoint, secret),
            status=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/webhook_endpoints/{endpoint.id}/"},
        )


class WebhookEndpointDetailView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="Read a webhook endpoint",
        responses={200: WebhookEndpointOutput, **schema.errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        return Response(_endpoint(get_object_or_404(WebhookEndpoint, pk=endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_partial_update",
        summary="Update a webhook endpoint",
        description="Any of `url`, `event_types`, `description`, `enabled`. New "
        "`event_types` apply to events followed from now on.",
        request=WebhookEndpointUpdateInput,
        responses={
            200: WebhookEndpointOutput,
            **schema.errors(400, 401, 403, 404, 413, 429),
        },
    )
    def patch(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint, data = _endpoint_and_body(
            request, endpoint_id, WebhookEndpointUpdateInput
        )
        enabled = data.pop("enabled", None)
        if data:
            for field, value in data.items():
                setattr(endpoint, field, value)
            endpoint.save(update_fields=[*data, "updated_at"])
        if enabled is not None:
            endpoint = services.endpoint_set_enabled(endpoint, enabled)
        return Response(_endpoint(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        summary="Delete a webhook endpoint",
        description="With its deliveries and their attempts.",
        responses={204: None, **schema.errors(401, 403, 404, 429)},
    )
    def delete(self, request: Request, endpoint_id: UUID) -> Response:
        get_object_or_404(WebhookEndpoint, pk=endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="Rotate an endpoint's signing secret",
        description="A new secret, shown this once. During the overlap every "
        "delivery carries two `v1,` signatures, one per secret, so a receiver "
        "verifies with either.",
        request=RotateSecretInput,
        responses={
            200: WebhookEndpointSecretOutput,
            **schema.errors(400, 401, 403, 404, 413, 429),
        },
    )
    def post(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint, data = _endpoint_and_body(request, endpoint_id, RotateSecretInput)
        overlap = data.get("overlap_seconds", settings.WEBHOOK_SECRET_OVERLAP)
        endpoint, secret = services.endpoint_rotate_secret(
            endpoint, overlap_seconds=overlap
        )
        return Response(_endpoint(endpoint, secret))


def _deliveries() -> Any:
    return WebhookDelivery.objects.prefetch_related("attempt_set")


class WebhookDeliveryListView(APIView):
    permission_classes = [IsStaff]
    max_limit = 200

    @extend_schema(
        operation_id="webhook_endpoints_deliveries",
        summary="An endpoint's deliveries, with every attempt",
        description="Newest event first; `next` continues with `before`.",
        parameters=[
            OpenApiParameter(
                "status", {"type": "string", "enum": DeliveryStatus.values}
            ),
            OpenApiParameter("payout_id", {"type": "string", "format": "uuid"}),
            schema.integer_query(
                "before",
                minimum=1,
                maximum=schema.MAX_POSITION,
                description="Only events at positions below this one.",
            ),
            schema.integer_query("limit", minimum=1, maximum=200, default=50),
        ],
        responses={
            200: WebhookDeliveryPageOutput,
            **schema.errors(400, 401, 403, 404, 429),
        },
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
        query = _deliveries().filter(endpoint=endpoint)
        params = request.query_params
        errors: dict[str, list[str]] = {}
        if raw := params.get("status"):
            if raw in DeliveryStatus.values:
                query = query.filter(status=raw)
            else:
                errors["status"] = [f"One of {', '.join(DeliveryStatus.values)}."]
        if raw := params.get("payout_id"):
            try:
                query = query.filter(
                    payout_id=serializers.UUIDField().to_internal_value(raw)
                )
            except ValidationError:
                errors["payout_id"] = ["Must be a UUID."]
        if raw := params.get("before"):
            if raw.isascii() and raw.isdigit() and len(raw) <= schema.POSITION_DIGITS:
                query = query.filter(position__lt=int(raw))
            else:
                errors["before"] = ["Must be a positive integer position."]
        if errors:
            raise ValidationError(errors)
        limit = parse_limit(params.get("limit"), default=50, maximum=self.max_limit)
        page = list(query.order_by("-position")[:limit])
        next_url = None
        if len(page) == limit:
            next_url = replace_query_param(
                request.build_absolute_uri(), "before", str(page[-1].position)
            )
        return Response(
            {
                "next": next_url,
                "results": WebhookDeliveryOutput(page, many=True).data,
            }
        )


class WebhookDeliveryResendView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="webhook_deliveries_resend",
        summary="Send a delivery again",
        description="Same `webhook-id`, same body, new signatures. It goes out when "
        "its turn in its payout's order comes (at once when the earlier versions are "
        "acknowledged) and its endpoint is enabled; one given up on gets a new "
        "retry window.",
        request=None,
        responses={
            202: WebhookDeliveryOutput,
            **schema.errors(401, 403, 404, 429),
        },
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = get_object_or_404(WebhookDelivery, pk=delivery_id)
        delivery = services.delivery_resend(delivery)
        return Response(
            WebhookDeliveryOutput(_deliveries().get(pk=delivery.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )
