"""Read models derived from the event store; every row can be rebuilt from the log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ledger.payout import MAX_DESCRIPTION, MAX_REASON
from ledger.values import AMOUNT_DIGITS, AMOUNT_PLACES

# What a PayoutAttempt keeps of a reason; workers/attempts.py cuts the text to fit.
# The workers' own notes on their calls, not event fields: not the ledger's MAX_REASON.
MAX_DOUBT_REASON = 200
MAX_LAST_FAILURE = 500


class PayoutView(models.Model):
    """One row per payout, for the list endpoint and the admin. Masked data only."""

    id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=16)
    amount = models.DecimalField(
        max_digits=AMOUNT_DIGITS + AMOUNT_PLACES, decimal_places=AMOUNT_PLACES
    )
    currency = models.CharField(max_length=3)
    recipient_type = models.CharField(max_length=16)
    recipient = models.JSONField(help_text="Masked recipient details.")
    description = models.CharField(max_length=MAX_DESCRIPTION, blank=True)
    failure_code = models.CharField(max_length=64, blank=True, null=True)
    failure_message = models.CharField(max_length=MAX_REASON, blank=True, null=True)
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    position = models.BigIntegerField(help_text="Notification id of the last event.")

    class Meta:
        verbose_name = "payout"
        # Every filter and ordering of the list endpoint has an index; the id makes
        # each ordering a total order for keyset (cursor) pagination.
        indexes = [
            models.Index(fields=["created_at", "id"], name="payout_created_idx"),
            models.Index(fields=["updated_at", "id"], name="payout_updated_idx"),
            models.Index(fields=["amount", "id"], name="payout_amount_idx"),
            models.Index(
                fields=["status", "created_at", "id"], name="payout_st_created_idx"
            ),
            models.Index(
                fields=["status", "updated_at", "id"], name="payout_st_updated_idx"
            ),
            models.Index(
                fields=["status", "amount", "id"], name="payout_st_amount_idx"
            ),
            models.Index(
                fields=["currency", "created_at", "id"], name="payout_cur_created_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount} {self.currency} {self.status}"


class Position(models.Model):
    """How far a follower of the notification log has got (its tracking record)."""

    name = models.CharField(max_length=64, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    # When the follower last read the log to its end: every event committed before
    # then is applied. The projection lag is measured from it (/metrics, /readyz),
    # so that no scrape reads, let alone decrypts, an event.
    caught_up_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


class LedgerCheckpoint(models.Model):
    """A signed digest of every stream head at a notification position, chained to
    the checkpoint before it.

    The hash chains catch an event altered, removed or inserted inside a stream; a
    checkpoint catches what they cannot: a stream's last events, or whole streams, cut
    away. Each covers its predecessor's digest and is signed with an Ed25519 key that
    only the checkpointer holds, so removing checkpoints leaves a gap, a broken link
    or a chain that stops too early (projections/checkpoints.py). Rows from before
    the chain (HMAC-signed, `sequence` null) are kept as history and not verified.
    """

    sequence = models.PositiveBigIntegerField(null=True, unique=True)
    position = models.BigIntegerField()
    streams = models.PositiveIntegerField()
    events = models.PositiveBigIntegerField()
    digest = models.CharField(max_length=64, help_text="sha256 of the stream heads.")
    heads = models.BinaryField(
        help_text="zlib of the sorted 'payout_id:version:hash' lines the digest covers, "
        "so that verification can name a stream that went missing."
    )
    previous_digest = models.CharField(max_length=64, blank=True, default="")
    checkpoint_digest = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="sha256 over sequence, position, counts, heads digest, previous "
        "checkpoint digest and time: what is signed, and what auditors publish.",
    )
    key_id = models.CharField(max_length=16, blank=True, default="")
    signature = models.CharField(max_length=128)
    # Part of what is signed: a checkpoint cannot be made to look younger.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        if self.sequence is None:
            return f"legacy checkpoint@{self.position} {self.digest[:12]}"
        return (
            f"checkpoint #{self.sequence}@{self.position} {self.checkpoint_digest[:12]}"
        )


class PayoutAttempt(models.Model):
    """What the workers keep about a payout's gateway calls: not ledger state (the
    events say what happened to the money), but who may call the gateway for it now,
    whether its last call left the outcome unknown, and whether it waits for a human.
    Written by workers/attempts.py only; not rebuilt from the log (it describes calls,
    not events)."""

    payout_id = models.UUIDField(primary_key=True)
    # One attempt at a time: the holder may call the gateway until lease_until.
    lease_holder = models.CharField(max_length=200, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    # Set while the last gateway call for it had no definitive answer.
    in_doubt_since = models.DateTimeField(null=True, blank=True, db_index=True)
    in_doubt_reason = models.CharField(
        max_length=MAX_DOUBT_REASON, blank=True, default=""
    )
    # Failures that are not the provider's (a bug, bad data): parked after a few.
    failures = models.PositiveIntegerField(default=0)
    last_failure = models.CharField(max_length=MAX_LAST_FAILURE, blank=True, default="")
    parked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "gateway attempt"

    def __str__(self) -> str:
        return str(self.payout_id)
