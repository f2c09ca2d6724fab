"""A TrackingRecorder on Django's ORM: positions commit with the rows they produced."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder

from projections.database import is_postgres
from projections.models import Position

if TYPE_CHECKING:
    from datetime import datetime


# How stale `caught_up_at` may get while a follower idles at the head of the log. The
# embedded (SQLite) follower polls every 50 ms and writes its row about once a second,
# not on every poll; on PostgreSQL a follower reads only when notified (or once a
# second), so it stamps every read and the lag it reports is exact. A batch that
# reaches the head stamps it in the update that moves the position.
def _heartbeat() -> timedelta:
    return timedelta(0) if is_postgres() else timedelta(seconds=1)


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

    def insert_tracking(
        self, tracking: Tracking, *, caught_up_at: datetime | None = None
    ) -> None:
        """Move the position to `tracking`; with `caught_up_at`, also note that the
        batch it ends reached the head of the log as read at that instant."""
        stamp = {} if caught_up_at is None else {"caught_up_at": caught_up_at}
        advanced = Position.objects.filter(
            name=self.name, position__lt=tracking.notification_id
        ).update(position=tracking.notification_id, **stamp)
        if advanced:
            return
        try:
            with transaction.atomic():
                Position.objects.create(
                    name=self.name, position=tracking.notification_id, **stamp
                )
        except Exception:
            raise IntegrityError(f"{self.name} already processed {tracking}") from None

    def caught_up(self, read_at: datetime) -> None:
        """Note that the follower has applied every notification committed before
        `read_at` (its last read, begun then, came back short of a full batch)."""
        Position.objects.filter(
            name=self.name, caught_up_at__lt=read_at - _heartbeat()
        ).update(caught_up_at=read_at)

    def max_tracking_id(self, application_name: str) -> int | None:
        return (
            Position.objects.filter(name=self.name)
            .values_list("position", flat=True)
            .first()
        )
