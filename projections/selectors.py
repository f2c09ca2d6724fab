"""Read queries over the projection, for api/ and the sweeper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, QuerySet

from ledger.values import PayoutStatus
from projections.models import PayoutView, Position

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

IN_FLIGHT = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value)


def payout_list() -> QuerySet[PayoutView]:
    return PayoutView.objects.all()


def stuck_payout_ids(*, updated_before: datetime, limit: int = 1000) -> list[UUID]:
    return list(
        PayoutView.objects.filter(status__in=IN_FLIGHT, updated_at__lt=updated_before)
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )


def counts_by_status() -> dict[str, int]:
    rows = PayoutView.objects.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def position_of(name: str) -> int:
    return (
        Position.objects.filter(name=name).values_list("position", flat=True).first()
        or 0
    )
