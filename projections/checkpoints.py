"""The checkpoint chain: each checkpoint has a sequence number, covers the digest of
the one before it, and is signed with Ed25519 by the checkpointer alone.

Deleting checkpoints leaves a gap in the sequence or a broken link; cutting the end
off the chain leaves a newest checkpoint older than the schedule allows, or a missing
checkpoint whose digest was published (an anchor); the checkpointer's own log, kept
outside the database, makes it refuse to extend a chain cut back behind its back."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from projections.models import LedgerCheckpoint
from projections.signing import (
    SigningKeyError,
    is_valid,
    key_id,
    load_signing_key,
    parse_public_keys,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

GENESIS_DIGEST = "0" * 64
FORMAT = "payouts-ledger-checkpoint/1"

Anchor = tuple[int, str]


class ChainError(Exception):
    """The checkpoint chain is not what it was signed to be."""


class RefusedToSign(Exception):
    """The checkpointer will not extend a chain or a ledger that lost something."""


# Keys


def signing_key() -> Ed25519PrivateKey:
    path = settings.CHECKPOINT_SIGNING_KEY_FILE
    if not path:
        raise ImproperlyConfigured(
            "this process may not sign checkpoints: only the checkpointer process, "
            "or an operator's `manage.py checkpoint`, is given "
            "CHECKPOINT_SIGNING_KEY_FILE"
        )
    try:
        return load_signing_key(Path(path))
    except SigningKeyError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def public_keys(text: str | None = None) -> dict[str, Ed25519PublicKey]:
    """The keys that verify checkpoints, by key id: `text` (a --public-key file's
    contents) or CHECKPOINT_PUBLIC_KEY."""
    try:
        keys = parse_public_keys(
            settings.CHECKPOINT_PUBLIC_KEY if text is None else text
        )
    except SigningKeyError as exc:
        raise ImproperlyConfigured(f"checkpoint public key: {exc}") from None
    return {key_id(key): key for key in keys}


# One checkpoint


def taken_at(checkpoint: LedgerCheckpoint) -> str:
    return checkpoint.created_at.astimezone(UTC).isoformat(timespec="microseconds")


def message(checkpoint: LedgerCheckpoint) -> bytes:
    """What a checkpoint's digest covers and its signature signs."""
    return (
        f"{FORMAT}\nsequence={checkpoint.sequence}\nposition={checkpoint.position}\n"
        f"streams={checkpoint.streams}\nevents={checkpoint.events}\n"
        f"heads={checkpoint.digest}\nprevious={checkpoint.previous_digest}\n"
        f"taken_at={taken_at(checkpoint)}\n"
    ).encode()


def seal(
    checkpoint: LedgerCheckpoint,
    previous: LedgerCheckpoint | None,
    key: Ed25519PrivateKey,
) -> None:
    """Number, link, digest and sign a new checkpoint (not saved)."""
    # `sequence` is nullable (unsequenced history rows), but `previous` is the head
    # of the chain, whose checkpoints all have one.
    checkpoint.sequence = previous.sequence + 1 if previous else 1  # type: ignore[operator]
    checkpoint.previous_digest = (
        previous.checkpoint_digest if previous else GENESIS_DIGEST
    )
    signed = message(checkpoint)
    checkpoint.checkpoint_digest = hashlib.sha256(signed).hexdigest()
    checkpoint.key_id = key_id(key.public_key())
    checkpoint.signature = key.sign(signed).hex()


def chain() -> list[LedgerCheckpoint]:
    return list(
        LedgerCheckpoint.objects.filter(sequence__isnull=False).order_by("sequence")
    )


def head() -> LedgerCheckpoint | None:
    return (
        LedgerCheckpoint.objects.filter(sequence__isnull=False)
        .order_by("-sequence")
        .first()
    )


# Verification


def check_chain(
    checkpoints: list[LedgerCheckpoint], keys: dict[str, Ed25519PublicKey]
) -> None:
    """Sequence from 1 without gaps, each signed, each linking to the one before."""
    if checkpoints and not keys:
        raise ImproperlyConfigured(
            "no public key to verify the checkpoints with: set CHECKPOINT_PUBLIC_KEY "
            "or pass --public-key"
        )
    previous: LedgerCheckpoint | None = None
    # The chain's checkpoints all have a `sequence` (the field is nullable for the
    # unsequenced history rows, never given here): hence the ignores below.
    for checkpoint in checkpoints:
        number = checkpoint.sequence
        expected = previous.sequence + 1 if previous else 1  # type: ignore[operator]
        if number != expected:
            since = f"#{previous.sequence}" if previous else "the start"
            raise ChainError(
                f"checkpoint chain broken: checkpoint(s) #{expected}"
                + (f" to #{number - 1}" if number - 1 > expected else "")  # type: ignore[operator]
                + f" missing between {since} and #{number}: checkpoints were deleted"
            )
        signed = message(checkpoint)
        if hashlib.sha256(signed).hexdigest() != checkpoint.checkpoint_digest:
            raise ChainError(
                f"checkpoint #{number} no longer matches its digest: its sequence, "
                "position, counts, heads digest, link or time were altered"
            )
        key = keys.get(checkpoint.key_id)
        if key is None:
            raise ChainError(
                f"checkpoint #{number} is signed by key {checkpoint.key_id or '?'}, "
                "which is not a checkpoint public key given to verify_ledger"
            )
        if not is_valid(key, checkpoint.signature, signed):
            raise ChainError(
                f"checkpoint #{number} has a bad signature: it was forged or altered"
            )
        linked = previous.checkpoint_digest if previous else GENESIS_DIGEST
        if checkpoint.previous_digest != linked:
            raise ChainError(
                f"checkpoint chain broken: checkpoint #{number} does not link to "
                f"{'#' + str(previous.sequence) if previous else 'the start'} "
                f"(it names {checkpoint.previous_digest[:12]}…, that one is "
                f"{linked[:12]}…): checkpoints were replaced or reordered"
            )
        if previous is not None and checkpoint.position < previous.position:
            raise ChainError(
                f"checkpoint #{number} is at position {checkpoint.position}, before "
                f"#{previous.sequence} at {previous.position}"
            )
        previous = checkpoint


def check_anchors(checkpoints: list[LedgerCheckpoint], anchors: list[Anchor]) -> None:
    """Each digest published outside the database is still in the chain."""
    by_number = {c.sequence: c for c in checkpoints}
    for number, digest in anchors:
        found = by_number.get(number)
        if found is None:
            newest = f"#{checkpoints[-1].sequence}" if checkpoints else "none at all"
            raise ChainError(
                f"anchored checkpoint #{number} is missing (the chain has "
                f"{newest}): checkpoints, and the events they covered, were removed"
            )
        if found.checkpoint_digest != digest.lower():
            raise ChainError(
                f"checkpoint #{number} differs from its anchor: digest "
                f"{found.checkpoint_digest[:12]}…, anchored {digest[:12]}…: the chain "
                "was replaced"
            )


def check_fresh(
    newest: LedgerCheckpoint | None,
    first_event_at: datetime | None,
    *,
    now: datetime,
    max_age: float,
) -> None:
    """The chain reaches a checkpoint no older than the schedule allows."""
    limit = timedelta(seconds=max_age)
    if newest is not None:
        if now - newest.created_at > limit:
            raise ChainError(
                f"the checkpoint chain ends at #{newest.sequence}, taken "
                f"{taken_at(newest)}, more than CHECKPOINT_MAX_AGE ({max_age:g}s) "
                "ago: later checkpoints were deleted, or checkpointing has stopped"
            )
    elif first_event_at is not None and now - first_event_at > limit:
        raise ChainError(
            f"no checkpoint, yet events exist since {first_event_at.isoformat()}, "
            f"more than CHECKPOINT_MAX_AGE ({max_age:g}s) ago: the checkpoints "
            "were deleted, or checkpointing never ran"
        )


def parse_anchor(text: str) -> Anchor:
    """`SEQ:DIGEST`, as the checkpoint command and the checkpointer's log print it."""
    number, _, digest = text.strip().partition(":")
    if not number.isdigit() or len(digest) != 64:
        raise ValueError(f"an anchor is SEQ:DIGEST (64 hex digits), not {text!r}")
    int(digest, 16)
    return int(number), digest.lower()


def read_anchors(lines: Iterable[str]) -> list[Anchor]:
    """The first field of each line of a checkpointer log (or a published copy)."""
    return [
        parse_anchor(line.split()[0])
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


# The checkpointer's own record


def log_line(checkpoint: LedgerCheckpoint) -> str:
    return (
        f"{checkpoint.sequence}:{checkpoint.checkpoint_digest} "
        f"position={checkpoint.position} taken_at={taken_at(checkpoint)}\n"
    )


def record(checkpoint: LedgerCheckpoint) -> None:
    path = Path(settings.CHECKPOINT_LOG_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(log_line(checkpoint))


def check_recorded() -> None:
    """The last checkpoint this signer recorded is still in the chain, unchanged."""
    path = Path(settings.CHECKPOINT_LOG_FILE)
    if not path.exists():
        return  # a first run, or a new host: the database's chain is taken as it is
    anchors = read_anchors(path.read_text().splitlines())
    if not anchors:
        return
    number, digest = anchors[-1]
    found = LedgerCheckpoint.objects.filter(sequence=number).first()
    if found is None or found.checkpoint_digest != digest:
        what = "is missing from" if found is None else "differs in"
        raise RefusedToSign(
            f"checkpoint #{number}, recorded in {path} when it was signed, {what} "
            "the database: the chain was cut back or replaced. Investigate; move the "
            "log aside only if the database was replaced on purpose"
        )
