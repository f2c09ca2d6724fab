"""A payout's projection row as a replay of its events says it must be, and the one
comparison of a row with it: `rebuild_projections` checks its shadow table with it,
`verify_ledger` the live table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.payout import MAX_REASON, Payout

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from uuid import UUID

    from django.db import models
    from eventsourcing.domain import DomainEventProtocol

# What is compared, for every payout: everything the projection holds.
FIELDS = (
    "status",
    "version",
    "amount",
    "currency",
    "recipient_type",
    "recipient",
    "description",
    "failure_code",
    "failure_message",
    "created_at",
    "updated_at",
    "position",
)


class Discrepancy(Exception):
    """The first thing found that a replay of the event store contradicts."""

    def __init__(self, payout_id: UUID | None, message: str) -> None:
        super().__init__(f"payout {payout_id}: {message}" if payout_id else message)
        self.payout_id = payout_id
        self.message = message


def fold(payout_id: UUID, events: Iterable[DomainEventProtocol[Any]]) -> Payout:
    """A stream's events applied in order: what Repository.get does, minus a slow
    assert. Raises TamperedEvent as the aggregate does."""
    payout: Any = None
    for event in events:
        payout = event.mutate(payout)  # type: ignore[attr-defined]  # not in the protocol
    if not isinstance(payout, Payout):
        raise Discrepancy(payout_id, f"not a payout: {type(payout).__name__}")
    return payout


def expected_row(payout: Payout, position: int) -> dict[str, Any]:
    """The projection row of `payout`, whose last event is at `position`."""
    message = payout.failure_message
    return {
        "status": payout.status.value,
        "version": payout.version,
        "amount": payout.money.amount,
        "currency": payout.money.currency,
        "recipient_type": payout.recipient.type,
        "recipient": payout.recipient.masked(),
        "description": payout.description,
        "failure_code": payout.failure_code,
        "failure_message": message[:MAX_REASON] if message is not None else None,
        "created_at": payout.created_on,
        "updated_at": payout.modified_on,
        "position": position,
    }


def row_values(row: models.Model) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


def without_stream(payout_id: UUID) -> Discrepancy:
    return Discrepancy(
        payout_id, "a projection row without a stream in the event store"
    )


def difference(
    payout_id: UUID, got: Mapping[str, Any] | None, want: Mapping[str, Any] | None
) -> Discrepancy | None:
    """How a projection row (`got`, None: no row) differs from the replay's (`want`,
    None: no stream), or None when they agree."""
    if got is None:
        return Discrepancy(payout_id, "missing from the projection: no row for it")
    if want is None:
        return without_stream(payout_id)
    for name in FIELDS:
        if got[name] != want[name]:
            return Discrepancy(
                payout_id,
                f"projection {name} is {got[name]!r}, the replay says {want[name]!r}",
            )
    return None
