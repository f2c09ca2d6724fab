"""REST_FRAMEWORK and SPECTACULAR_SETTINGS."""

from __future__ import annotations

from settings.env import env

API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="100/s")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The first class names the WWW-Authenticate challenge of a 401.
        "api.authentication.ApiKeyAuthentication",
        "api.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # DRF's default is AllowAny; every view states its role explicitly on top of this.
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsStaff"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerUserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": API_THROTTLE_RATE},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.ContentNegotiation",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Payout Ledger API",
    "DESCRIPTION": (
        "Create, follow and cancel payouts; every change is an event in an "
        "append-only, encrypted event store. Errors are RFC 9457 problem documents "
        "(`application/problem+json`). Card numbers are only ever returned masked."
        "\n\nBeside this API, for operators (not under `/api/v1`): `GET /healthz` "
        "(alive), `GET /readyz` (JSON checks; `503` when one fails) and "
        "`GET /metrics` (Prometheus text). When the server sets `METRICS_TOKEN`, "
        "`/metrics` needs `Authorization: Bearer <METRICS_TOKEN>` (security scheme "
        "`MetricsToken`) and answers anything else with a `401` problem and "
        '`WWW-Authenticate: Bearer realm="metrics"`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc assets are served from here, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # PATCH takes a whole PayoutUpdateInput (`status` required), not a partial one.
    "COMPONENT_SPLIT_PATCH": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # One name per choice set, so that generators get stable, readable enums.
    "ENUM_NAME_OVERRIDES": {
        "PayoutStatusEnum": "api.serializers.STATUSES",
        "CardRecipientTypeEnum": ["card"],
        "BankAccountRecipientTypeEnum": ["bank_account"],
        "ActorTypeEnum": "ledger.payout.ACTOR_TYPES",
        "EventTypeEnum": "api.serializers.EVENT_TYPE_NAMES",
        "WebhookEventTypeEnum": "webhooks.models.WEBHOOK_EVENT_TYPES",
        "WebhookDeliveryStatusEnum": "webhooks.models.DeliveryStatus",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <key>`; keys come from "
                "`manage.py create_api_key` or the admin.",
            },
            "MetricsToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "`GET /metrics` only, when the server sets "
                "`METRICS_TOKEN`: `Authorization: Bearer <METRICS_TOKEN>`.",
            },
        }
    },
}
