"""What leaves the ledger: payouts and events as the API, the projection and the
audit see them, never with a full card number."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from ledger.chain import event_hash
from ledger.payout import EVENT_TYPES, Payout
from ledger.values import TRANSITIONS, PayoutStatus

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from eventsourcing.domain import DomainEventProtocol


class _Recorded(Protocol):
    """The fields every payout event carries."""

    originator_id: uuid.UUID
    originator_version: int
    timestamp: datetime
    actor_type: str
    actor_id: str
    request_id: str
    previous_hash: str


@dataclass(frozen=True)
class PayoutSnapshot:
    id: uuid.UUID
    amount: Decimal
    currency: str
    recipient: dict[str, Any]
    description: str
    status: str
    failure_code: str | None
    failure_message: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def allowed_transitions(self) -> list[str]:
        return [s.value for s in TRANSITIONS[PayoutStatus(self.status)]]


@dataclass(frozen=True)
class EventRecord:
    position: int | None
    payout_id: uuid.UUID
    version: int
    type: str
    occurred_at: datetime
    actor: dict[str, str]
    request_id: str
    data: dict[str, Any]
    previous_hash: str
    hash: str


def snapshot(payout: Payout) -> PayoutSnapshot:
    """A payout as it leaves the ledger: the recipient masked."""
    return PayoutSnapshot(
        id=payout.id,
        amount=payout.money.amount,
        currency=payout.money.currency,
        recipient=payout.recipient.masked(),
        description=payout.description,
        status=payout.status.value,
        failure_code=payout.failure_code,
        failure_message=payout.failure_message,
        version=payout.version,
        created_at=payout.created_on,
        updated_at=payout.modified_on,
    )


def record(event: DomainEventProtocol[Any], position: int | None) -> EventRecord:
    """An event as the history, the feed and the audit show it (masked)."""
    fields = cast("_Recorded", event)
    return EventRecord(
        position=position,
        payout_id=fields.originator_id,
        version=fields.originator_version,
        type=EVENT_TYPES[type(event)],
        occurred_at=fields.timestamp,
        actor={"type": fields.actor_type, "id": fields.actor_id},
        request_id=fields.request_id,
        data=masked_data(event),
        previous_hash=fields.previous_hash,
        hash=event_hash(event),
    )


def masked_data(event: DomainEventProtocol[Any]) -> dict[str, Any]:
    """An event's own fields as the outside world may see them: no full card number."""
    if isinstance(event, Payout.Created):
        recipient = (
            {
                "type": "card",
                "number": event.card_number.masked if event.card_number else None,
                "holder": event.holder,
            }
            if event.recipient_type == "card"
            else {
                "type": "bank_account",
                "iban": event.iban,
                "bic": event.bic,
                "holder": event.holder,
            }
        )
        return {
            "amount": str(event.amount),
            "currency": event.currency,
            "recipient_details": recipient,
            "description": event.description,
        }
    if isinstance(event, Payout.Completed):
        return {"gateway_reference": event.gateway_reference}
    if isinstance(event, Payout.Failed):
        return {"failure_reason": {"code": event.code, "message": event.message}}
    if isinstance(event, Payout.Cancelled):
        return {"reason": event.reason}
    return {}
