from __future__ import annotations

from django.urls import path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from api import views, webhooks

# (route, view, name): one line each, so that the API's surface reads as a table.
ROUTES = [
    ("payouts/", views.PayoutListCreateView, "payout-list"),
    ("payouts/<uuid:payout_id>/", views.PayoutDetailView, "payout-detail"),
    ("payouts/<uuid:payout_id>/history/", views.PayoutHistoryView, "payout-history"),
    ("events/", views.EventFeedView, "event-feed"),
    (
        "webhook_endpoints/",
        webhooks.WebhookEndpointListView,
        "webhook-endpoint-list",
    ),
    (
        "webhook_endpoints/<uuid:endpoint_id>/",
        webhooks.WebhookEndpointDetailView,
        "webhook-endpoint-detail",
    ),
    (
        "webhook_endpoints/<uuid:endpoint_id>/rotate_secret/",
        webhooks.WebhookEndpointRotateView,
        "webhook-endpoint-rotate-secret",
    ),
    (
        "webhook_endpoints/<uuid:endpoint_id>/deliveries/",
        webhooks.WebhookDeliveryListView,
        "webhook-endpoint-deliveries",
    ),
    (
        "webhook_deliveries/<str:delivery_id>/resend/",
        webhooks.WebhookDeliveryResendView,
        "webhook-delivery-resend",
    ),
]

urlpatterns = [
    *(path(route, view.as_view(), name=name) for route, view, name in ROUTES),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
