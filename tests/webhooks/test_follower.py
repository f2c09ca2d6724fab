"""The webhook follower: deliveries written once per event and subscribed endpoint,
in the transaction that records its position."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from ledger.payout import STATUS_AFTER
from projections.models import Position
from projections.runner import drain
from tests.builders import TEST_ACTOR, make_endpoint, new_payout, paid_payout
from webhooks.follower import WebhookFollower
from webhooks.models import EVENT_TYPES, WebhookDelivery, message_id

if TYPE_CHECKING:
    from ledger.application import Payouts
    from projections.runner import Batch

URL = "https://93.184.215.14/hooks"


def test_every_event_the_follower_reads_has_one_webhook_type() -> None:
    # given the ledger events the follower subscribes to
    followed = set(STATUS_AFTER)
    # then each has a webhook type, and every webhook type has its event
    assert set(EVENT_TYPES) == followed


def test_each_event_becomes_one_delivery_per_subscribed_endpoint(
    ledger: Payouts,
) -> None:
    # given
    everything, _ = make_endpoint(URL)
    completions, _ = make_endpoint(URL, ["payout.completed"])
    payout_id = paid_payout(ledger)
    # when
    drain(ledger, WebhookFollower(ledger))
    # then
    rows = WebhookDelivery.objects.filter(endpoint=everything).order_by("version")
    assert [(d.version, d.event_type) for d in rows] == [
        (1, "payout.created"),
        (2, "payout.processing"),
        (3, "payout.completed"),
    ]
    assert [d.id for d in rows] == [
        message_id(everything.id, payout_id, v) for v in (1, 2, 3)
    ]
    only = WebhookDelivery.objects.get(endpoint=completions)
    assert (only.version, only.event_type) == (3, "payout.completed")


def test_a_payload_is_the_masked_payout_at_the_event_with_position_and_version(
    ledger: Payouts,
) -> None:
    # given
    endpoint, _ = make_endpoint(URL)
    payout_id = paid_payout(ledger)
    # when
    drain(ledger, WebhookFollower(ledger))
    # then
    processing = WebhookDelivery.objects.get(endpoint=endpoint, version=2)
    body = json.loads(processing.payload)
    assert body["type"] == "payout.processing"
    assert body["data"]["version"] == 2
    assert body["data"]["position"] == processing.position > 0
    payout = body["data"]["payout"]
    assert payout["id"] == str(payout_id)
    assert payout["status"] == "processing" and payout["version"] == 2
    assert payout["recipient_details"]["number"] == "424242******4242"
    assert "4242424242424242" not in processing.payload


def test_a_replayed_log_adds_no_delivery(ledger: Payouts) -> None:
    # given
    make_endpoint(URL)
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    # when: the position is lost and the whole log followed again
    Position.objects.filter(name=WebhookFollower.name).update(position=0)
    drain(ledger, WebhookFollower(ledger))
    # then
    assert WebhookDelivery.objects.count() == 3


class CrashingFollower(WebhookFollower):
    def handle(self, batch: Batch) -> None:
        super().handle(batch)
        raise RuntimeError("crash after the rows, before the commit")


def test_a_crash_mid_batch_keeps_neither_the_rows_nor_the_position(
    ledger: Payouts,
) -> None:
    # given
    make_endpoint(URL)
    paid_payout(ledger)
    # when
    with pytest.raises(RuntimeError):
        drain(ledger, CrashingFollower(ledger))
    # then
    assert WebhookDelivery.objects.count() == 0
    assert not Position.objects.filter(name=WebhookFollower.name, position__gt=0)
    # and the next run writes each delivery once
    drain(ledger, WebhookFollower(ledger))
    assert WebhookDelivery.objects.count() == 3


def test_without_endpoints_the_follower_only_moves_its_position(
    ledger: Payouts,
) -> None:
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)
    assert drain(ledger, WebhookFollower(ledger)) == 1
    assert WebhookDelivery.objects.count() == 0
    assert Position.objects.get(name=WebhookFollower.name).position > 0


def test_a_disabled_endpoint_still_gets_its_deliveries_recorded(
    ledger: Payouts, settings: Any
) -> None:
    endpoint, _ = make_endpoint(URL)
    endpoint.enabled = False
    endpoint.save()
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 3
