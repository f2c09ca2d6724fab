"""Read models derived from the event store; every row can be rebuilt from the log."""

from __future__ import annotations

from django.db import models


class PayoutView(models.Model):
    """One row per payout, for the list endpoint and the admin. Masked data only."""

    id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=16)
    amount = models.DecimalField(max_digits=24, decimal_places=4)
    currency = models.CharField(max_length=3)
    recipient_type = models.CharField(max_length=16)
    recipient = models.JSONField(help_text="Masked recipient details.")
    description = models.CharField(max_length=500, blank=True)
    failure_code = models.CharField(max_length=64, blank=True, null=True)
    failure_message = models.CharField(max_length=500, blank=True, null=True)
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

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


class LedgerCheckpoint(models.Model):
    """A signed digest of every stream head at a notification position.

    The hash chains catch an event altered, removed or inserted inside a stream; this
    catches what they cannot: a stream's last events, or whole streams, cut away. The
    HMAC key (AUDIT_HMAC_KEY) is not the cipher key, so holding the event store's key
    is not enough to forge a checkpoint. Auditors should also keep the printed digest.
    """

    position = models.BigIntegerField()
    streams = models.PositiveIntegerField()
    events = models.PositiveBigIntegerField()
    digest = models.CharField(max_length=64)
    heads = models.BinaryField(
        help_text="zlib of the sorted 'payout_id:version:hash' lines the digest covers, "
        "so that verification can name a stream that went missing."
    )
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"checkpoint@{self.position} {self.digest[:12]}"
