"""What staff do to endpoints and deliveries, from the API and the admin alike."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.signing import new_secret, seal

if TYPE_CHECKING:
    from collections.abc import Sequence


def endpoint_create(
    *, url: str, event_types: Sequence[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret, which is never shown again."""
    endpoint_id = uuid.uuid4()
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        id=endpoint_id,
        url=url,
        event_types=list(dict.fromkeys(event_types)),
        description=description,
        secret=seal(secret, endpoint_id),
    )
    return endpoint, secret


def endpoint_rotate_secret(
    endpoint: WebhookEndpoint, *, overlap_seconds: int
) -> tuple[WebhookEndpoint, str]:
    """A new current secret; the one it replaces keeps signing (beside it) for
    `overlap_seconds`, so receivers can switch without refusing a delivery."""
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret if overlap_seconds > 0 else None
        endpoint.previous_secret_expires_at = (
            timezone.now() + timedelta(seconds=overlap_seconds)
            if overlap_seconds > 0
            else None
        )
        endpoint.secret = seal(secret, endpoint.id)
        endpoint.save()
    return endpoint, secret


def endpoint_set_enabled(endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    """Enabling again resumes the deliveries given up on, in order, each with a new
    retry window; disabling holds its deliveries (the follower still records them)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if enabled and not endpoint.enabled:
            endpoint.deliveries.filter(status=DeliveryStatus.FAILED).update(
                status=DeliveryStatus.PENDING,
                first_attempt_at=None,
                next_attempt_at=timezone.now(),
            )
            endpoint.enabled = True
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.consecutive_failures = 0
        elif not enabled and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = "Disabled by an operator."
        endpoint.save()
    return endpoint


def delivery_resend(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again, with the same `webhook-id` and body, as soon as its turn in its
    payout's order comes (at once if earlier versions are acknowledged); a delivery
    given up on gets a new retry window."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
        first_attempt_at=None,
        succeeded_at=None,
    )
    delivery.refresh_from_db()
    return delivery
