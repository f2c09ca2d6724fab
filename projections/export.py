"""The event feed as NDJSON for auditors (manage.py export_events).

One event per line in position order, each with the exact fields its hash covers
(`chain_fields`), and nothing else: the integrity data (count, range, and a sha256 of
every line) is an `Integrity` that the caller writes apart, to a sidecar file beside
the export (`<export>.integrity.json`) or to stderr, so that every line of the export
is an event any NDJSON reader can take. Events are read and written a batch at a time:
constant memory whatever the length of the ledger. scripts/verify_export.py checks an
export and its sidecar offline, with the standard library only.
No field of `chain_fields` gives a card number away: the number itself is replaced by a
salted digest (ledger/chain.py), and the request fingerprint is a keyed HMAC of the body
with the number replaced by a keyed digest (api/idempotency.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.chain import chain_fields, hash_fields
from ledger.payout import EVENT_TYPES
from ledger.records import masked_data

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ledger.application import Payouts


class UnreadableEvent(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(
            f"the event at position {position} cannot be decrypted or decoded "
            f"({reason}); run manage.py verify_ledger"
        )
        self.position = position


SIDECAR_SUFFIX = ".integrity.json"
DIGEST_OF = "sha256 of every line of the export, then 'count:after:until'"


def sidecar_path(export: Path) -> Path:
    """Where the integrity data of an export file goes: beside it, named after it."""
    return export.with_name(export.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class Integrity:
    """What an export's lines add up to: verify_export.py recomputes every figure."""

    count: int
    digest: str
    after: int
    until: int

    def document(self) -> bytes:
        fields = {
            "count": self.count,
            "after": self.after,
            "until": self.until,
            "digest": self.digest,
            "digest_of": DIGEST_OF,
        }
        return json.dumps(fields).encode() + b"\n"


def export_range(
    payouts: Payouts, after: int | None, until: int | None
) -> tuple[int, int]:
    """The positions (after, until] an export covers: `until` is capped at the last
    position written when the export starts, so later writes never change the file."""
    start = after or 0
    head = payouts.recorder.max_notification_id() or 0
    stop = head if until is None else min(until, head)
    return start, max(start, stop)


def event_line(position: int, event: Any) -> bytes:
    fields = chain_fields(event)
    own_hash = hash_fields(fields)
    record: dict[str, Any] = {
        "position": position,
        "payout_id": str(event.originator_id),
        "version": event.originator_version,
        "type": EVENT_TYPES[type(event)],
        "occurred_at": event.timestamp.isoformat(),
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "request_id": event.request_id,
        "data": masked_data(event),
        "previous_hash": event.previous_hash,
        "hash": own_hash,
        "chain_fields": fields,
    }
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def export_events(
    payouts: Payouts,
    write: Callable[[bytes], Any],
    *,
    after: int,
    until: int,
    batch: int = 500,
    progress: Callable[[int], Any] | None = None,
) -> Integrity:
    """Write every event in (after, until], `batch` at a time; return what they add
    up to (never written among the events)."""
    digest, count, position = hashlib.sha256(), 0, after
    while position < until:
        notifications = payouts.recorder.select_notifications(
            start=position, limit=batch, stop=until, inclusive_of_start=False
        )
        if not notifications:
            break
        for notification in notifications:
            try:
                event = payouts.mapper.to_domain_event(notification)
            except Exception as exc:
                raise UnreadableEvent(notification.id, type(exc).__name__) from None
            line = event_line(notification.id, event)
            digest.update(line)
            write(line)
            count += 1
        position = notifications[-1].id
        if progress:
            progress(len(notifications))
    # The range and count are sealed too: a sidecar claiming another `until` must not
    # pass.
    digest.update(f"{count}:{after}:{until}".encode())
    return Integrity(count, digest.hexdigest(), after, until)
