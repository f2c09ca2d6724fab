from __future__ import annotations

from django.urls import path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from api import views

urlpatterns = [
    path("payouts/", views.PayoutListCreateView.as_view(), name="payout-list"),
    path(
        "payouts/<uuid:payout_id>/",
        views.PayoutDetailView.as_view(),
        name="payout-detail",
    ),
    path(
        "payouts/<uuid:payout_id>/history/",
        views.PayoutHistoryView.as_view(),
        name="payout-history",
    ),
    path("events/", views.EventFeedView.as_view(), name="event-feed"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
