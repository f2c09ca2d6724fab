"""PayoutViewProjection: turns Payout events into PayoutView rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.utils import get_topic

from ledger.application import masked_data
from ledger.payout import Payout
from ledger.values import PayoutStatus
from projections.models import PayoutView

if TYPE_CHECKING:
    from projections.runner import Batch

_STATUS_AFTER: dict[type, PayoutStatus] = {
    Payout.ProcessingStarted: PayoutStatus.PROCESSING,
    Payout.Completed: PayoutStatus.COMPLETED,
    Payout.Failed: PayoutStatus.FAILED,
    Payout.Cancelled: PayoutStatus.CANCELLED,
}


class PayoutViewProjection:
    name = "payout_view"
    topics = tuple(get_topic(cls) for cls in (Payout.Created, *_STATUS_AFTER))

    def handle(self, batch: Batch) -> None:
        # Created is always version 1, so inserting every Created first keeps each
        # payout's events in order; both writes are idempotent (conflicts ignored,
        # updates guarded by version), so a replayed batch changes nothing.
        PayoutView.objects.bulk_create(
            [
                _row(event, position)
                for event, position in batch
                if isinstance(event, Payout.Created)
            ],
            ignore_conflicts=True,
        )
        for event, position in batch:
            status = _STATUS_AFTER.get(type(event))
            if status is None:
                continue
            changes = {
                "status": status.value,
                "version": event.originator_version,
                "updated_at": event.timestamp,
                "position": position,
            }
            if isinstance(event, Payout.Failed):
                changes["failure_code"] = event.code
                changes["failure_message"] = event.message[:500]
            PayoutView.objects.filter(
                id=event.originator_id, version__lt=event.originator_version
            ).update(**changes)


def _row(event: Payout.Created, position: int) -> PayoutView:
    data = masked_data(event)
    return PayoutView(
        id=event.originator_id,
        status=PayoutStatus.PENDING.value,
        amount=event.amount,
        currency=event.currency,
        recipient_type=event.recipient_type,
        recipient=data["recipient_details"],
        description=event.description,
        version=event.originator_version,
        created_at=event.timestamp,
        updated_at=event.timestamp,
        position=position,
    )
