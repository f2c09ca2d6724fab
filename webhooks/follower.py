"""The webhook follower: one delivery row per event and subscribed endpoint."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from eventsourcing.utils import get_topic

from api.serializers import PayoutOutput
from ledger.payout import STATUS_AFTER
from webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, message_id

if TYPE_CHECKING:
    from ledger.application import Payouts
    from projections.runner import Batch


def webhook_type(event: Any) -> str:
    return EVENT_TYPES[type(event)]


def payload(event: Any, position: int, payout: Any) -> str:
    """The body every attempt sends: the payout as the API returns it at this
    event's version (card number masked), with the event's position and version."""
    return json.dumps(
        {
            "type": webhook_type(event),
            "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
            "data": {
                "position": position,
                "version": event.originator_version,
                "payout": PayoutOutput(payout).data,
            },
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


class WebhookFollower:
    """Writes its deliveries inside the runner's transaction, which also records its
    position (projections.runner.catch_up): an event's deliveries exist once, or not
    at all, whatever the crashes. The payload is built from the event store at the
    event's version, so it is the same however late the follower runs.

    Endpoints are matched as they are when the event is followed: one registered
    later does not get the events before it; a disabled one still gets its
    deliveries, which wait for it to be enabled again."""

    name = "webhook_follower"
    topics = tuple(get_topic(cls) for cls in STATUS_AFTER)

    def __init__(self, payouts: Payouts, wake: threading.Event | None = None) -> None:
        self.payouts = payouts
        self.wake = wake

    def handle(self, batch: Batch) -> None:
        endpoints = list(WebhookEndpoint.objects.only("id", "event_types"))
        if not endpoints:
            return
        rows: list[WebhookDelivery] = []
        for event, position in batch:
            kind = webhook_type(event)
            subscribed = [e for e in endpoints if kind in e.event_types]
            if not subscribed:
                continue
            payout = self.payouts.get_payout(
                event.originator_id, version=event.originator_version
            )
            body = payload(event, position, payout)
            rows.extend(
                WebhookDelivery(
                    id=message_id(
                        endpoint.id, event.originator_id, event.originator_version
                    ),
                    endpoint_id=endpoint.id,
                    payout_id=event.originator_id,
                    version=event.originator_version,
                    position=position,
                    event_type=kind,
                    payload=body,
                )
                for endpoint in subscribed
            )
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        if rows and self.wake is not None:
            # After the commit: woken earlier, the sender would not see the rows yet.
            transaction.on_commit(self.wake.set)
