"""Auditing the ledger: hash chains, signed checkpoints, legal transitions, contiguous
versions, and the projection against a replay. Walks streams in id order, in batches:
constant memory whatever the size of the ledger."""

from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from ledger.chain import LEGACY_SEEDS, UNCHAINED, event_hash, stream_seed
from ledger.cipher import is_bound
from ledger.errors import TamperedEvent
from ledger.payout import EVENT_TYPES, STATUS_AFTER
from ledger.values import TRANSITIONS, PayoutStatus
from projections import checkpoints as chain
from projections.database import EventTable
from projections.models import LedgerCheckpoint, PayoutView
from projections.projectors import PayoutViewProjection
from projections.replay import Discrepancy, difference, expected_row, fold, row_values
from projections.selectors import position_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from eventsourcing.persistence import Notification

    from ledger.application import Payouts

Linked = tuple["Notification", Any, str]  # a stored event, decoded, with its hash
Stream = tuple["UUID", list[Linked]]


@dataclass
class StreamHead:
    payout_id: UUID
    version: int
    hash: str


@dataclass
class Report:
    streams: int = 0
    events: int = 0
    seconds: float = 0.0
    checkpoints: int = 0
    unprojected: int = 0
    # Streams written before events were bound to their rows and chains seeded with
    # their payout id: checked for copies by ciphertext (see _check_copies) only.
    legacy: int = 0
    discrepancy: Discrepancy | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.discrepancy is None


# Checkpoints


def head_line(head: StreamHead) -> bytes:
    return f"{head.payout_id}:{head.version}:{head.hash}\n".encode()


class HeadDigest:
    """sha256 over every stream head as of a position, streams in id order; the heads
    themselves are kept compressed so a later verification can name what went missing."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.digest = hashlib.sha256()
        self.compressor = zlib.compressobj()
        self.chunks: list[bytes] = []
        self.streams = 0
        self.events = 0

    def add(self, head: StreamHead | None, events: int) -> None:
        if head is None:
            return
        line = head_line(head)
        self.digest.update(line)
        self.chunks.append(self.compressor.compress(line))
        self.streams += 1
        self.events += events

    def heads(self) -> bytes:
        return b"".join([*self.chunks, self.compressor.flush()])


def head_at(
    payout_id: UUID, events: list[Linked], position: int
) -> tuple[StreamHead | None, int]:
    """A stream's head as of a position, and how many of its events it had by then."""
    upto = [(n, h) for n, _, h in events if n.id <= position]
    if not upto:
        return None, 0
    notification, own_hash = upto[-1]
    return StreamHead(payout_id, notification.originator_version, own_hash), len(upto)


def iter_heads(blob: bytes) -> Iterator[StreamHead]:
    """The heads recorded in a checkpoint, in id order, decompressed as they are read."""
    decompressor, pending = zlib.decompressobj(), b""
    for start in range(0, len(blob), 65536):
        pending += decompressor.decompress(blob[start : start + 65536])
        *lines, pending = pending.split(b"\n")
        for line in lines:
            ident, version, own_hash = line.decode().split(":")
            yield StreamHead(UUID(ident), int(version), own_hash)
    pending += decompressor.flush()
    if pending.strip():
        ident, version, own_hash = pending.decode().strip().split(":")
        yield StreamHead(UUID(ident), int(version), own_hash)


class CheckpointCheck:
    """Replays one checkpoint alongside the streams (both in id order)."""

    def __init__(self, checkpoint: LedgerCheckpoint) -> None:
        self.checkpoint = checkpoint
        self.label = (
            f"checkpoint #{checkpoint.sequence} (position {checkpoint.position})"
        )
        self.digest = HeadDigest(checkpoint.position)
        self.recorded = iter_heads(bytes(checkpoint.heads))
        self.next: StreamHead | None = next(self.recorded, None)

    def see(self, payout_id: UUID | None, events: list[Linked]) -> None:
        """Account for the next stream found (None: no stream is left)."""
        while self.next is not None and (
            payout_id is None or self.next.payout_id < payout_id
        ):
            self._missing(self.next)
        if payout_id is None:
            return
        head, count = head_at(payout_id, events, self.checkpoint.position)
        recorded = (
            self.next
            if self.next is not None and self.next.payout_id == payout_id
            else None
        )
        if recorded is not None:
            self.next = next(self.recorded, None)
            if head != recorded:
                now = head.version if head else 0
                cut = (
                    f": its events after v{now} were deleted (stream shortened)"
                    if now < recorded.version
                    else ""
                )
                raise Discrepancy(
                    payout_id,
                    f"differs from {self.label}: it "
                    f"had version {recorded.version} with hash {recorded.hash[:12]}…, "
                    f"the store now gives {now or 'nothing'}{cut}",
                )
        elif head is not None:
            raise Discrepancy(
                payout_id,
                f"has events up to {self.label} that the checkpoint does not "
                "know: events were inserted",
            )
        self.digest.add(head, count)

    def finish(self) -> None:
        self.see(None, [])
        if (
            self.digest.digest.hexdigest() != self.checkpoint.digest
            or self.digest.streams != self.checkpoint.streams
        ):
            raise Discrepancy(
                None,
                f"{self.label}: the stream heads "
                "it recorded no longer match its signed digest",
            )

    def _missing(self, head: StreamHead) -> None:
        raise Discrepancy(
            head.payout_id,
            f"stream missing: it had {head.version} event(s) at {self.label}, "
            "the event store has none now",
        )


def take_checkpoint(
    payouts: Payouts,
    *,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> LedgerCheckpoint:
    """Sign the next checkpoint of the chain. Refused (checkpoints.RefusedToSign) when
    the chain lost what this signer recorded, or the ledger lost what the previous
    checkpoint covered: a deletion is never signed into a fresh checkpoint."""
    key = chain.signing_key()  # first: a process that may not sign reads nothing
    chain.check_recorded()
    previous = chain.head()
    position = payouts.recorder.max_notification_id() or 0
    digest = HeadDigest(position)
    check = CheckpointCheck(previous) if previous else None
    try:
        for streams in _batches(
            payouts, batch=batch, until=position, progress=progress
        ):
            for payout_id, events in streams:
                if check:
                    check.see(payout_id, events)
                digest.add(*head_at(payout_id, events, position))
        if check:
            check.finish()
    except Discrepancy as found:
        raise chain.RefusedToSign(
            f"the ledger no longer matches checkpoint #{previous.sequence if previous else '?'}"
            f": {found}"
        ) from None
    checkpoint = LedgerCheckpoint(
        position=position,
        streams=digest.streams,
        events=digest.events,
        digest=digest.digest.hexdigest(),
        heads=digest.heads(),
        created_at=now or timezone.now(),
    )
    chain.seal(checkpoint, previous, key)
    # The sequence is unique: of two signers racing, the second one fails here.
    checkpoint.save()
    chain.record(checkpoint)
    return checkpoint


# Verification


def verify(
    payouts: Payouts,
    *,
    after: int | None = None,
    until: int | None = None,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
    public_keys: dict[str, Ed25519PublicKey] | None = None,
    anchors: list[chain.Anchor] | None = None,
) -> Report:
    """Replay every stream (or those with an event in (after, until]) and stop at the
    first discrepancy. The checkpoint chain is checked on full runs only: a range sees
    only part of each checkpoint's streams. `public_keys`: those that verify the
    checkpoints (default CHECKPOINT_PUBLIC_KEY); `anchors`: (sequence, digest) pairs
    published outside the database, each of which must still be in the chain."""
    started = time.perf_counter()
    report = Report()
    full = after is None and until is None
    checkpoints = chain.chain() if full else []
    projection_position = _projection_position()
    first_event_at: datetime | None = None
    try:
        if full:
            chain.check_chain(
                checkpoints,
                chain.public_keys() if public_keys is None else public_keys,
            )
            chain.check_anchors(checkpoints, anchors or [])
            if checkpoints:
                # Before the walk: a chain cut back is the first thing to report.
                chain.check_fresh(
                    checkpoints[-1],
                    None,
                    now=timezone.now(),
                    max_age=settings.CHECKPOINT_MAX_AGE,
                )
            legacy = LedgerCheckpoint.objects.filter(sequence__isnull=True).count()
            if legacy:
                report.notes.append(
                    f"{legacy} legacy HMAC checkpoint(s) from before the chain: kept, "
                    "not verified"
                )
        checks = [CheckpointCheck(c) for c in checkpoints]
        previous: UUID | None = None
        for streams in _batches(
            payouts, batch=batch, after=after, until=until, progress=progress
        ):
            rows = PayoutView.objects.in_bulk([payout_id for payout_id, _ in streams])
            for payout_id, events in streams:
                _check_stream(payout_id, events)
                report.legacy += _is_legacy(events)
                for check in checks:
                    check.see(payout_id, events)
                if max(n.id for n, _, _ in events) <= projection_position:
                    _check_projection(payout_id, rows.get(payout_id), events)
                else:
                    report.unprojected += 1  # the projector has not reached it yet
                report.streams += 1
                report.events += len(events)
                created_at = events[0][1].timestamp
                if first_event_at is None or created_at < first_event_at:
                    first_event_at = created_at
            if full:
                _check_orphan_rows(previous, streams[-1][0], set(rows))
            previous = streams[-1][0]
        if full:
            _check_copies(payouts)
        for check in checks:
            check.finish()
            report.checkpoints += 1
        if full:
            _check_orphan_rows(previous, None, set())
            if not checkpoints:
                chain.check_fresh(
                    None,
                    first_event_at,
                    now=timezone.now(),
                    max_age=settings.CHECKPOINT_MAX_AGE,
                )
    except chain.ChainError as broken:
        report.discrepancy = Discrepancy(None, str(broken))
    except Discrepancy as found:
        report.discrepancy = found
    report.seconds = time.perf_counter() - started
    return report


def _batches(
    payouts: Payouts,
    *,
    batch: int,
    after: int | None = None,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[list[Stream]]:
    """Streams in id order, `batch` at a time, each with its decoded events and hashes."""
    table = EventTable(payouts)
    beyond: UUID | None = None
    while ids := table.stream_ids(beyond=beyond, limit=batch, after=after, until=until):
        beyond = ids[-1]
        grouped: dict[UUID, list[tuple[Notification, Any, str]]] = {i: [] for i in ids}
        for notification in table.events_of(ids):
            # EventTable reads every stream id as a UUID.
            stream_id = cast("UUID", notification.originator_id)
            try:
                event = payouts.mapper.to_domain_event(notification)
            except TamperedEvent:
                raise Discrepancy(
                    stream_id,
                    f"event v{notification.originator_version} "
                    f"({notification.topic.rsplit('.', 1)[-1]}) at position "
                    f"{notification.id} cannot be decrypted under its stream id, version "
                    "and topic: it was copied, moved or relabelled from another row, "
                    "or its bytes were altered",
                ) from None
            except Exception as exc:
                raise Discrepancy(
                    stream_id,
                    f"event v{notification.originator_version} cannot be decrypted or "
                    f"decoded ({type(exc).__name__}): its stored bytes were altered or forged",
                ) from None
            grouped[stream_id].append((notification, event, event_hash(event)))
        yield [(payout_id, grouped[payout_id]) for payout_id in ids]
        if progress:
            progress(len(ids))


def _check_stream(payout_id: UUID, events: list[Linked]) -> None:
    """Versions, commit order, bindings, the hash chain and every transition."""
    versions = [n.originator_version for n, _, _ in events]
    if versions != list(range(1, len(versions) + 1)):
        raise Discrepancy(payout_id, f"versions are not contiguous from 1: {versions}")
    positions = [n.id for n, _, _ in events]
    if positions != sorted(positions):
        raise Discrepancy(payout_id, "event versions are out of commit order")
    _check_binding(payout_id, events)
    previous_hash, chained, status = _seed(payout_id, events[0]), False, None
    for notification, event, own_hash in events:
        if (
            event.originator_id != payout_id
            or event.originator_version != notification.originator_version
        ):
            raise Discrepancy(
                payout_id,
                f"event v{notification.originator_version} is stored under another stream or version",
            )
        if event.previous_hash == UNCHAINED and not chained:
            pass  # written before the chain existed: only the checkpoints cover it
        elif event.previous_hash != previous_hash:
            raise Discrepancy(
                payout_id,
                f"hash chain broken at v{event.originator_version} ({EVENT_TYPES[type(event)]}): "
                "an event before it was altered, removed or reordered, or this one was inserted",
            )
        else:
            chained = True
        target = STATUS_AFTER[type(event)]
        legal = (status is None and target == PayoutStatus.PENDING) or (
            status is not None and target in TRANSITIONS[status]
        )
        if not legal:
            raise Discrepancy(
                payout_id,
                f"illegal transition {status} -> {target} at v{event.originator_version}",
            )
        status, previous_hash = target, own_hash


def _seed(payout_id: UUID, created: Linked) -> str:
    """The previous_hash the stream's first event must carry."""
    notification, event, _ = created
    seed = stream_seed(payout_id)
    if event.previous_hash == seed:
        return seed
    if event.previous_hash in LEGACY_SEEDS and not is_bound(notification.state):
        return str(event.previous_hash)  # written before streams were seeded
    raise Discrepancy(
        payout_id,
        f"v1 ({EVENT_TYPES.get(type(event), type(event).__name__)}) is not seeded with "
        "this payout's id: it was copied from another stream",
    )


def _check_binding(payout_id: UUID, events: list[Linked]) -> None:
    """Once a stream has a bound event, every later one is bound: an unbound event
    after it was copied in from a stream written before binding."""
    bound = False
    for notification, _, _ in events:
        if is_bound(notification.state):
            bound = True
        elif bound:
            raise Discrepancy(
                payout_id,
                f"event v{notification.originator_version} at position "
                f"{notification.id} is in the unbound format after bound events: "
                "copied in from an older stream",
            )


def _is_legacy(events: list[Linked]) -> bool:
    notification, event, _ = events[0]
    return not is_bound(notification.state) or event.previous_hash in LEGACY_SEEDS


def _check_copies(payouts: Payouts) -> None:
    """AES-GCM nonces are random, so no two events the ledger wrote share their
    bytes: two rows that do are a copy. Bound blobs are caught on decryption; this
    catches copies of the unbound ones of legacy streams."""
    for copy in EventTable(payouts).unbound_copies():
        raise Discrepancy(
            cast("UUID", copy.originator_id),  # EventTable reads stream ids as UUIDs
            f"event v{copy.originator_version} at position {copy.id} is a byte-for-"
            "byte copy of an event stored in another row: a cloned legacy event",
        )


def _check_projection(
    payout_id: UUID, row: PayoutView | None, events: list[Linked]
) -> None:
    payout = fold(payout_id, (event for _, event, _ in events))
    want = expected_row(payout, events[-1][0].id)
    found = difference(payout_id, row_values(row) if row else None, want)
    if found is not None:
        raise found


def _check_orphan_rows(
    previous: UUID | None, last: UUID | None, known: set[UUID]
) -> None:
    """Projection rows in (previous, last] that are not streams of this batch have no
    events at all: their stream was removed from the event store."""
    rows = PayoutView.objects.all()
    if previous is not None:
        rows = rows.filter(id__gt=previous)
    if last is not None:
        rows = rows.filter(id__lte=last)
    for payout_id in rows.order_by("id").values_list("id", flat=True).iterator():
        if payout_id not in known:
            raise Discrepancy(
                payout_id, "in the projection but has no events: its stream was removed"
            )


def _projection_position() -> int:
    return position_of(PayoutViewProjection.name)
