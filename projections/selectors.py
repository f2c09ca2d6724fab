"""Read queries over the projection, for api/ and the sweeper."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ledger.apps import get_payouts
from ledger.values import PayoutStatus
from projections.models import PayoutAttempt, PayoutView, Position

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime
    from uuid import UUID

IN_FLIGHT = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value)


def payout_list() -> QuerySet[PayoutView]:
    return PayoutView.objects.all()


def stuck_payout_pages(
    *, updated_before: datetime, page: int = 1000
) -> Iterator[list[UUID]]:
    """Every payout pending or processing since before `updated_before`, oldest
    first, a page at a time (keyset on updated_at, id)."""
    overdue = PayoutView.objects.filter(
        status__in=IN_FLIGHT, updated_at__lt=updated_before
    ).order_by("updated_at", "id")
    after: tuple[datetime, UUID] | None = None
    while True:
        rows = overdue
        if after is not None:
            rows = rows.filter(
                Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1])
            )
        batch = list(rows.values_list("updated_at", "id")[:page])
        if batch:
            yield [payout_id for _, payout_id in batch]
        if len(batch) < page:
            return
        after = batch[-1]


def counts_by_status() -> dict[str, int]:
    rows = PayoutView.objects.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def position_of(name: str) -> int:
    return (
        Position.objects.filter(name=name).values_list("position", flat=True).first()
        or 0
    )


def tracking_of(name: str) -> tuple[int, datetime] | None:
    """A follower's position and when it last read the log to its end; None before
    its first run."""
    return (
        Position.objects.filter(name=name)
        .values_list("position", "caught_up_at")
        .first()
    )


def follower_lag_seconds(name: str) -> float:
    """How far behind a follower of the log is, in seconds: 0 when it has applied
    every event; otherwise the time since it last read the log to its end, which is
    at least the age of the oldest event it has not applied (to within a second in
    embedded mode, where followers poll); +inf when it has never run and events
    exist. Read from its tracking row and the highest notification id (an index
    lookup): no event is read, let alone decrypted, and the cost does not grow with
    the log."""
    head = get_payouts().recorder.max_notification_id() or 0
    tracking = tracking_of(name)
    if tracking is None:
        return 0.0 if head == 0 else math.inf
    position, caught_up_at = tracking
    if head <= position:
        return 0.0
    return max(0.0, (timezone.now() - caught_up_at).total_seconds())


def in_doubt_attempts() -> QuerySet[PayoutAttempt]:
    """Payouts in processing whose last gateway call left the outcome unknown. A
    final status is a definitive answer whatever the flag says: a worker killed
    between recording it and clearing the flag leaves nothing in doubt."""
    processing = PayoutView.objects.filter(status=PayoutStatus.PROCESSING.value)
    return PayoutAttempt.objects.filter(
        in_doubt_since__isnull=False, payout_id__in=processing.values("id")
    )


def attempt_counts() -> dict[str, int]:
    """Payouts whose last gateway call left the outcome unknown, and parked ones."""
    return {
        "in_doubt": in_doubt_attempts().count(),
        "parked": PayoutAttempt.objects.filter(parked_at__isnull=False).count(),
    }
