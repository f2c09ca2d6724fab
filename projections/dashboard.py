"""The operator's dashboard (unfold's DASHBOARD_CALLBACK, templates/admin/index.html):
what needs a look first, read from the projection, the followers' tracking rows, the
webhook tables and the workers' metrics. Every figure is a bounded query over an
index; nothing here reads or decrypts an event."""

from __future__ import annotations

import json
import os
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncHour, TruncMinute
from django.urls import reverse
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from ledger.values import PayoutStatus
from projections.models import PayoutView
from projections.projectors import PayoutViewProjection
from projections.selectors import (
    IN_FLIGHT,
    counts_by_status,
    follower_lag_seconds,
    in_doubt_attempts,
)
from webhooks.follower import WebhookFollower
from webhooks.models import WebhookEndpoint

if TYPE_CHECKING:
    from datetime import datetime

    from django.db.models import QuerySet
    from django.http import HttpRequest

TERMINAL = [s.value for s in PayoutStatus if s.is_terminal]
# Chart colours: unfold's primary for creations, its green for settlements.
CREATED_COLOUR = "var(--color-primary-600)"
SETTLED_COLOUR = "#16a34a"
# Side by side with a legend (unfold's default options stack bars and hide it).
CHART_OPTIONS = json.dumps(
    {
        "maintainAspectRatio": False,
        "maxBarThickness": 10,
        "plugins": {"legend": {"display": True, "position": "bottom"}},
        "scales": {
            "x": {"grid": {"display": False}, "ticks": {"maxTicksLimit": 12}},
            "y": {"beginAtZero": True, "ticks": {"precision": 0}},
        },
    }
)


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    context["dashboard"] = dashboard()
    return context


def dashboard(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    changelist = reverse("admin:projections_payoutview_changelist")
    counts = counts_by_status()
    overdue = overdue_payouts(now).count()
    in_doubt = in_doubt_attempts().count()
    errors, calls = gateway_calls()
    disabled = list(
        WebhookEndpoint.objects.filter(enabled=False).order_by("-disabled_at")[:10]
    )
    return {
        "statuses": [
            {
                "status": status.value,
                "count": counts.get(status.value, 0),
                "href": f"{changelist}?status__exact={status.value}",
            }
            for status in PayoutStatus
        ],
        "attention": [
            {
                "title": "In doubt",
                "count": in_doubt,
                "help": "the gateway's answer was lost: resolve them by asking it",
                "href": f"{changelist}?attention=in_doubt",
            },
            {
                "title": "Overdue",
                "count": overdue,
                "help": f"pending or processing for over "
                f"{settings.STUCK_PAYOUT_AFTER} s: re-drive them",
                "href": f"{changelist}?attention=overdue",
            },
        ],
        "lag": {
            "projection": _seconds(follower_lag_seconds(PayoutViewProjection.name)),
            "webhooks": _seconds(follower_lag_seconds(WebhookFollower.name)),
        },
        "gateway": {
            "errors": errors,
            "calls": calls,
            "rate": f"{100 * errors / calls:.1f} %" if calls else "no calls yet",
        },
        "chart_options": CHART_OPTIONS,
        "hour": chart(per_bucket(now, timedelta(hours=1), TruncMinute, 60), "%H:%M"),
        "day": chart(per_bucket(now, timedelta(days=1), TruncHour, 24), "%H:00"),
        "disabled_endpoints": [
            {
                "url": endpoint.url,
                "reason": endpoint.disabled_reason,
                "since": endpoint.disabled_at,
                "href": reverse(
                    "admin:webhooks_webhookendpoint_change", args=[endpoint.pk]
                ),
            }
            for endpoint in disabled
        ],
    }


def overdue_payouts(now: datetime) -> QuerySet[PayoutView]:
    """Unfinished, and untouched for longer than the sweeper waits."""
    older_than = now - timedelta(seconds=settings.STUCK_PAYOUT_AFTER)
    return PayoutView.objects.filter(status__in=IN_FLIGHT, updated_at__lt=older_than)


def per_bucket(
    now: datetime, span: timedelta, trunc: Any, buckets: int
) -> list[tuple[datetime, int, int]]:
    """(bucket start, created, settled) for each of `buckets` buckets up to now."""
    width = span / buckets
    first = _floor(now, width) - width * (buckets - 1)
    created = _counts(PayoutView.objects.all(), "created_at", first, trunc)
    settled = _counts(
        PayoutView.objects.filter(status__in=TERMINAL), "updated_at", first, trunc
    )
    starts = [first + width * n for n in range(buckets)]
    return [(s, created.get(s, 0), settled.get(s, 0)) for s in starts]


def chart(series: list[tuple[datetime, int, int]], label: str) -> str:
    """Chart.js data for unfold's bar chart component."""
    local = timezone.get_current_timezone()
    return json.dumps(
        {
            "labels": [
                start.astimezone(local).strftime(label) for start, _, _ in series
            ],
            "datasets": [
                {
                    "label": "Created",
                    "data": [n for _, n, _ in series],
                    "backgroundColor": CREATED_COLOUR,
                },
                {
                    "label": "Settled",
                    "data": [n for _, _, n in series],
                    "backgroundColor": SETTLED_COLOUR,
                },
            ],
        }
    )


def gateway_calls() -> tuple[int, int]:
    """(calls that failed, calls made) since the workers started, from their own
    metrics: transient errors and exhausted retries, beside every final answer."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if not settings.METRICS_MULTIPROCESS or not os.path.isdir(directory):
        return 0, 0
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    errors = settled = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "payout_gateway_errors_total":
                errors += sample.value
            elif sample.name == "payout_processing_seconds_count":
                settled += sample.value
    return int(errors), int(errors + settled)


def _counts(
    rows: QuerySet[PayoutView], field: str, since: datetime, trunc: Any
) -> dict[datetime, int]:
    found = (
        rows.filter(**{f"{field}__gte": since})
        .annotate(bucket=trunc(field, tzinfo=UTC))
        .values("bucket")
        .annotate(n=Count("id"))
    )
    return {row["bucket"]: row["n"] for row in found}


def _floor(moment: datetime, width: timedelta) -> datetime:
    base = moment.replace(minute=0, second=0, microsecond=0)
    if width >= timedelta(hours=1):
        return base
    return moment.replace(second=0, microsecond=0)


def _seconds(value: float) -> str:
    if value == float("inf"):
        return "never ran"
    return "caught up" if value == 0 else f"{value:.1f} s behind"
