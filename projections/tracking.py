"""A TrackingRecorder on Django's ORM: positions commit with the rows they produced."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

from projections.models import Position

if TYPE_CHECKING:
    from datetime import datetime

# How stale `caught_up_at` may get while a follower idles at the head of the log: a
# polling follower then writes its row about once a second, not on every poll.
HEARTBEAT = timedelta(seconds=1)


class DjangoTrackingRecorder(TrackingRecorder):
    """Positions of one follower of the notification log, in the Django database.

    `insert_tracking` must run inside the caller's `transaction.atomic()`, the one that
    writes what the events produced: then a crash loses both or neither, and a replayed
    notification is refused because positions only move forward.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def lock(self) -> int:
        """Lock this follower's position row for the current transaction; return it."""
        position, _ = Position.objects.select_for_update().get_or_create(name=self.name)
        return position.position

    def insert_tracking(self, tracking: Tracking) -> None:
        advanced = Position.objects.filter(
            name=self.name, position__lt=tracking.notification_id
        ).update(position=tracking.notification_id)
        if advanced:
            return
        try:
            with transaction.atomic():
                Position.objects.create(
                    name=self.name, position=tracking.notification_id
                )
        except Exception:
            raise IntegrityError(f"{self.name} already processed {tracking}") from None

    def caught_up(self, read_at: datetime) -> None:
        """Note that the follower has applied every notification committed before
        `read_at` (its last read, begun then, came back short of a full batch)."""
        Position.objects.filter(
            name=self.name, caught_up_at__lt=read_at - HEARTBEAT
        ).update(caught_up_at=read_at)

    def max_tracking_id(self, application_name: str) -> int | None:
        return (
            Position.objects.filter(name=self.name)
            .values_list("position", flat=True)
            .first()
        )
