"""The per-stream hash chain: links, salted card digests, and v1 events upcast."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from eventsourcing.persistence import StoredEvent

from ledger.chain import (
    GENESIS,
    UNCHAINED,
    chain_fields,
    event_hash,
    hash_fields,
    stream_seed,
)
from tests.builders import TEST_ACTOR, new_payout

if TYPE_CHECKING:
    from ledger.application import Payouts

CARD = "4242424242424242"


def test_a_created_event_starts_the_chain_at_its_own_payout_seed(
    payouts: Payouts,
) -> None:
    # given
    payout_id = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    # when
    created = next(iter(payouts.events.get(payout_id)))
    # then
    assert created.previous_hash == stream_seed(payout_id)
    assert created.previous_hash != GENESIS
    assert payouts.repository.get(payout_id).chain_head == event_hash(created)


def test_the_hashed_fields_hold_a_salted_card_digest_never_the_number(
    payouts: Payouts,
) -> None:
    # given
    payout_id = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    created = next(iter(payouts.events.get(payout_id)))
    # when
    fields = chain_fields(created)
    # then
    assert CARD not in json.dumps(fields)
    assert "card_salt" not in fields and "card_number" not in fields
    assert len(fields["card_digest"]) == 64


def test_two_payouts_to_one_card_get_different_card_digests(payouts: Payouts) -> None:
    # given
    first, second = (
        next(
            iter(
                payouts.events.get(
                    payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
                )
            )
        )
        for _ in range(2)
    )
    # then: the salt makes the digest useless for matching or brute-forcing numbers
    assert chain_fields(first)["card_digest"] != chain_fields(second)["card_digest"]


def test_changing_any_field_changes_the_hash(payouts: Payouts) -> None:
    # given
    payout_id = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    created = next(iter(payouts.events.get(payout_id)))
    fields = chain_fields(created)
    # when
    altered = {**fields, "amount": "1500.01"}
    # then
    assert hash_fields(fields) == event_hash(created)
    assert hash_fields(altered) != event_hash(created)


def test_an_event_written_before_the_chain_existed_is_still_readable(
    payouts: Payouts,
) -> None:
    # given: a v1 Created event, as stored before class_version 2 added the chain
    payout_id = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    stored = payouts.recorder.select_events(payout_id)[0]
    state = json.loads(stored.state)
    for added_in_v2 in ("previous_hash", "card_salt", "class_version"):
        state.pop(added_in_v2)
    legacy_id = uuid.uuid4()
    payouts.recorder.insert_events(
        [StoredEvent(legacy_id, 1, stored.topic, json.dumps(state).encode())]
    )
    # when
    legacy = payouts.get_payout(legacy_id)
    payouts.start_processing(legacy_id, actor=TEST_ACTOR)
    # then: readable, unlinked, and the chain starts with the next event
    created, started = list(payouts.events.get(legacy_id))
    assert legacy.status == "pending"
    assert created.previous_hash == UNCHAINED
    assert started.previous_hash == event_hash(created)
