"""Following the notification log: exactly-once for what is written in our database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone
from eventsourcing.persistence import Tracking
from prometheus_client import Counter

from ledger.errors import TamperedEvent
from projections.tracking import DjangoTrackingRecorder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from eventsourcing.persistence import Notification

    from ledger.application import Payouts

logger = logging.getLogger(__name__)

TAMPERED_EVENTS = Counter(
    "ledger_tampered_events_total",
    "Stored events that do not authenticate in their row (copied, moved, relabelled "
    "or altered), skipped by a log follower: never projected, never dispatched.",
    ["follower"],
)

Batch = list[tuple[Any, int]]


class Follower(Protocol):
    """Something derived from the log: handles a batch inside the caller's transaction."""

    name: str

    @property
    def topics(self) -> Sequence[str]:
        """The event topics it follows (read only: a tuple of them will do)."""
        ...

    def handle(self, batch: Batch) -> None: ...


def catch_up(
    payouts: Payouts,
    follower: Follower,
    *,
    batch_size: int = 500,
    stop: int | None = None,
) -> int:
    """Apply the next batch of notifications and advance the position, atomically.

    The position row is locked first, so two runners of one follower take turns; any
    error rolls the whole batch back and propagates: the follower stays put, and the
    error shows instead of an event being skipped. With `stop`, nothing after that
    notification id is applied.

    The one exception is an event the ledger did not write in its row (TamperedEvent:
    it fails authentication there). Retrying cannot change that, and stopping would
    let one forged row halt every payout behind it; it is skipped, logged as
    critical with its position, and counted (ledger_tampered_events_total), for an
    operator and verify_ledger to deal with. It is never applied, so never paid.
    """
    recorder = DjangoTrackingRecorder(follower.name)
    with transaction.atomic():
        position = recorder.lock()
        # Before the read: whatever committed before this instant, the read sees.
        read_at = timezone.now()
        notifications = payouts.recorder.select_notifications(
            start=position,
            limit=batch_size,
            stop=stop,
            topics=follower.topics,
            inclusive_of_start=False,
        )
        at_head = len(notifications) < batch_size
        if not notifications:
            recorder.caught_up(read_at)
            return 0
        batch = list(_decoded(payouts, follower, notifications))
        if batch:
            follower.handle(batch)
        recorder.insert_tracking(
            Tracking(payouts.name, notifications[-1].id),
            caught_up_at=read_at if at_head else None,
        )
    logger.debug("%s applied %d events", follower.name, len(notifications))
    return len(notifications)


def _decoded(
    payouts: Payouts, follower: Follower, notifications: Sequence[Notification]
) -> Iterator[tuple[Any, int]]:
    for notification in notifications:
        try:
            yield payouts.mapper.to_domain_event(notification), notification.id
        except TamperedEvent as tampered:
            TAMPERED_EVENTS.labels(follower=follower.name).inc()
            logger.critical(
                "%s skipped the event at position %d: %s",
                follower.name,
                notification.id,
                tampered,
                extra={
                    "position": notification.id,
                    "payout_id": str(tampered.payout_id),
                },
            )


class Reading(TypedDict, total=False):
    """How catch_up reads, passed through by drain (catch_up's defaults apply)."""

    batch_size: int
    stop: int | None


def drain(
    payouts: Payouts,
    follower: Follower,
    *,
    after_batch: Callable[[int], object] | None = None,
    **reading: Unpack[Reading],
) -> int:
    """Catch up until nothing is left (up to `stop`); returns how many events were
    applied. `after_batch` is told the count of each batch once it is applied."""
    total = 0
    while applied := catch_up(payouts, follower, **reading):
        total += applied
        if after_batch is not None:
            after_batch(applied)
    return total
