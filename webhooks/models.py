"""Webhook endpoints, the deliveries derived from the event log, and every attempt."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

from ledger.payout import Payout

if TYPE_CHECKING:
    from datetime import datetime

# The payout events a receiver can subscribe to, by the ledger event they come from:
# keyed by class, so that renaming an event fails here instead of dropping its hook.
EVENT_TYPES: dict[type[Any], str] = {
    Payout.Created: "payout.created",
    Payout.ProcessingStarted: "payout.processing",
    Payout.Completed: "payout.completed",
    Payout.Failed: "payout.failed",
    Payout.Cancelled: "payout.cancelled",
}
WEBHOOK_EVENT_TYPES = list(EVENT_TYPES.values())
# What is kept of a receiver's answer: enough to see an error, never a whole body.
RESPONSE_PREFIX_BYTES = 1024
# What is kept of a free text (a description, why an endpoint was disabled, an
# attempt's error); the sender cuts what it records to fit.
MAX_TEXT = 500
MAX_URL = 2000


def message_id(endpoint_id: uuid.UUID, payout_id: uuid.UUID, version: int) -> str:
    """The `webhook-id` of one event for one endpoint: the same for every attempt and
    every resend, and for a follower replaying the log, so receivers can deduplicate."""
    return "msg_" + uuid.uuid5(endpoint_id, f"{payout_id}/{version}").hex


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=MAX_URL)
    event_types = models.JSONField(default=list)
    description = models.CharField(max_length=MAX_TEXT, blank=True, default="")
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=MAX_TEXT, blank=True, default="")
    # Sealed with the event store's cipher (CIPHER_KEYS), bound to the endpoint id.
    secret = models.BinaryField(editable=False)
    previous_secret = models.BinaryField(null=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook endpoint"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def previous_secret_active(self, now: datetime) -> bool:
        return bool(
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    # Retried for the whole window without a 2xx: given up on, its endpoint disabled.
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint. Written by the webhook follower in the transaction
    that records its position; sent (and re-sent) by the sender until a 2xx."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    payout_id = models.UUIDField()
    version = models.PositiveIntegerField()
    position = models.BigIntegerField(help_text="Notification id of the event.")
    event_type = models.CharField(max_length=32)
    # The exact bytes that are signed and sent, the same on every attempt.
    payload = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "payout_id", "version"],
                name="webhook_delivery_event_uniq",
            )
        ]
        indexes = [
            # The sender's walk: an endpoint's pending deliveries, soonest due first.
            models.Index(
                fields=["endpoint", "status", "next_attempt_at"],
                name="webhook_delivery_due_idx",
            ),
            models.Index(
                fields=["endpoint", "-created_at"], name="webhook_delivery_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version} of {self.payout_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_set"
    )
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=MAX_TEXT, blank=True, default="")
    response_prefix = models.CharField(
        max_length=RESPONSE_PREFIX_BYTES, blank=True, default=""
    )

    class Meta:
        verbose_name = "webhook attempt"
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["delivery", "at"], name="webhook_attempt_idx")]
