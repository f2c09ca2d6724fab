"""Tamper evidence: every event is hashed over a canonical encoding of its own fields,
including the hash of the event before it in its stream.

The hash is computed in the aggregate, as the event is created (see ChainLink): the
aggregate already holds its stream's head, so no extra read is needed on the write path
(a mapper subclass would have to fetch the previous stored event inside the insert
lock), and the link becomes a field of the event itself, encrypted and upcast like any
other. Altering, removing, reordering or inserting an event then breaks the chain.

The full card number never enters the encoding: it is replaced by a digest salted with a
random value kept inside the encrypted event, so a published hash (history, exports)
cannot be brute-forced back to the few unknown middle digits of a masked number.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

# The seed of streams written before streams were seeded with their payout id.
GENESIS = "0" * 64
# What v1 events (written before the chain existed) carry once upcast.
UNCHAINED = ""
LEGACY_SEEDS = (GENESIS, UNCHAINED)


def stream_seed(payout_id: UUID) -> str:
    """The previous_hash of a stream's Created: its own payout id, hashed. A Created
    copied to another stream then links to the wrong seed, which anyone holding the
    exported chain fields can see, without the cipher key."""
    return hashlib.sha256(f"payout-ledger/stream/v1:{payout_id}".encode()).hexdigest()


def card_digest(salt: str, number: str) -> str:
    return hashlib.sha256(f"{salt}:{number}".encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def chain_fields(event: Any) -> dict[str, Any]:
    """The exact fields an event's hash covers, as JSON-ready values."""
    fields = dict(vars(event))
    card = fields.pop("card_number", None)
    salt = fields.pop("card_salt", None)
    if card is not None and salt:
        fields["card_digest"] = card_digest(salt, card.reveal())
    fields["topic"] = get_topic(type(event))
    return {key: _plain(value) for key, value in fields.items()}


def canonical(fields: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same bytes in every process and script."""
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def hash_fields(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def event_hash(event: Any) -> str:
    return hash_fields(chain_fields(event))


class ChainLink:
    """Mixed into each Payout event: after an event applies, the aggregate's chain head
    is that event's hash; the next event records it as `previous_hash`."""

    def mutate(self, aggregate: Any) -> Any:
        aggregate = super().mutate(aggregate)  # type: ignore[misc]
        if aggregate is not None:
            aggregate.chain_head = event_hash(self)
        return aggregate
