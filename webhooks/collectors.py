"""Webhook figures read at scrape time from the database, so every process agrees."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from projections.selectors import follower_lag_seconds
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from collections.abc import Iterator

FOLLOWER = "webhook_follower"


class WebhookCollector:
    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = Q(status=DeliveryStatus.PENDING)
        # One query for every delivery figure.
        figures = WebhookDelivery.objects.aggregate(
            oldest=Min("created_at", filter=pending),
            **{
                status: Count("id", filter=Q(status=status))
                for status in DeliveryStatus.values
            },
        )
        by_status = GaugeMetricFamily(
            "webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
        )
        for status in DeliveryStatus.values:
            by_status.add_metric([status], figures[status])
        yield by_status
        oldest = figures["oldest"]
        yield GaugeMetricFamily(
            "webhook_delivery_lag_seconds",
            "Age of the oldest webhook delivery not yet acknowledged.",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "webhook_follower_lag_seconds",
            "How far the webhook follower is behind the event log.",
            value=follower_lag_seconds(FOLLOWER),
        )
        yield GaugeMetricFamily(
            "webhook_endpoints_disabled",
            "Webhook endpoints that are disabled (by an operator or after failures).",
            value=WebhookEndpoint.objects.filter(enabled=False).count(),
        )
