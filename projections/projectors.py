"""PayoutViewProjection: turns Payout events into PayoutView rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ledger.payout import MAX_REASON, STATUS_AFTER, Payout
from ledger.records import masked_data
from ledger.values import PayoutStatus
from projections.database import update_newer
from projections.models import PayoutView

if TYPE_CHECKING:
    from uuid import UUID

    from projections.runner import Batch

# Every event after Created changes a row's status.
_STATUS_AFTER = {k: v for k, v in STATUS_AFTER.items() if k is not Payout.Created}


class PayoutViewProjection:
    """Writes PayoutView rows; `model` and `name` point it at another table with the
    same columns and another position (the shadow table of a rebuild)."""

    name = "payout_view"
    # Created apart: in one tuple display with the others, mypy joins its class (of
    # the library's metaclass) and theirs to `object`.
    topics = (get_topic(Payout.Created), *(get_topic(cls) for cls in _STATUS_AFTER))
    model: Any = PayoutView

    def __init__(self, *, model: Any = None, name: str | None = None) -> None:
        if model is not None:
            self.model = model
        if name is not None:
            self.name = name

    def handle(self, batch: Batch) -> None:
        # Both writes are idempotent (conflicts ignored, updates guarded by version),
        # so a replayed batch changes nothing. A payout created in this batch, and
        # not in the table yet, is inserted with its later events of the batch
        # already folded in; the rest is one guarded update per payout (Failed is
        # final, so the last change of a payout carries any failure fields).
        created = {
            event.originator_id: _row(self.model, event, position)
            for event, position in batch
            if isinstance(event, Payout.Created)
        }
        if created:
            present = self.model.objects.filter(id__in=list(created))
            for payout_id in present.values_list("id", flat=True):
                del created[payout_id]
        changes: dict[UUID, dict[str, Any]] = {}
        for event, position in batch:
            change = change_values(event, position)
            if change is None:
                continue
            row = created.get(event.originator_id)
            if row is not None and row.version < event.originator_version:
                for field, value in change.items():
                    setattr(row, field, value)
            else:
                changes.setdefault(event.originator_id, {}).update(change)
        self.model.objects.bulk_create(created.values(), ignore_conflicts=True)
        update_newer(self.model, changes, fields=_CHANGED, optional=_FAILURE)


# What every change_values holds, and what only a Failed adds.
_CHANGED = ("status", "version", "updated_at", "position")
_FAILURE = ("failure_code", "failure_message")


def _row(model: Any, event: Payout.Created, position: int) -> PayoutView:
    return model(**created_values(event, position))


def created_values(event: Payout.Created, position: int) -> dict[str, Any]:
    """The row a Created event inserts, as field values."""
    data = masked_data(event)
    return {
        "id": event.originator_id,
        "status": PayoutStatus.PENDING.value,
        "amount": event.amount,
        "currency": event.currency,
        "recipient_type": event.recipient_type,
        "recipient": data["recipient_details"],
        "description": event.description,
        "version": event.originator_version,
        "created_at": event.timestamp,
        "updated_at": event.timestamp,
        "position": position,
    }


def change_values(event: Any, position: int) -> dict[str, Any] | None:
    """What a later event changes in its payout's row (None: not a status change);
    the failure fields only when it is Failed."""
    status = _STATUS_AFTER.get(type(event))
    if status is None:
        return None
    change: dict[str, Any] = {
        "status": status.value,
        "version": event.originator_version,
        "updated_at": event.timestamp,
        "position": position,
    }
    if isinstance(event, Payout.Failed):
        change["failure_code"] = event.code
        change["failure_message"] = event.message[:MAX_REASON]
    return change
