"""The fingerprint an Idempotency-Key replay is compared on: stored with the Created
event and published with its chain fields, so it holds no card number, is keyed with
its own key, and keys fingerprinted the old way still replay."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from api import idempotency
from api.idempotency import fingerprint, legacy_fingerprint
from ledger.apps import get_payouts
from ledger.errors import RequestMismatch
from tests.api.support import assert_problem, post_payout
from tests.builders import TEST_ACTOR, card_payout, new_payout

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from ledger.application import Payouts

CARD = "4242424242424242"


def created_fingerprint(payout_id: str) -> str:
    return get_payouts().repository.get(UUID(payout_id), version=1).request_fingerprint


def test_a_keyed_create_stores_a_versioned_fingerprint_of_its_body(
    staff_client: APIClient,
) -> None:
    # given
    body = card_payout(number=CARD)
    # when
    response = post_payout(staff_client, body, HTTP_IDEMPOTENCY_KEY="k1")
    # then
    stored = created_fingerprint(response.json()["id"])
    assert stored == fingerprint(body)
    assert stored.startswith("v2:")


def test_the_body_the_fingerprint_hashes_holds_a_digest_not_the_card_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: every message the fingerprint hashes, recorded (the card's own keyed
    # digest aside: that one is computed from the number, in memory)
    hashed: list[bytes] = []
    real_new = hmac.new

    def spy(key: bytes, message: bytes, digestmod: Any) -> Any:
        hashed.append(message)
        return real_new(key, message, digestmod)

    monkeypatch.setattr(idempotency.hmac, "new", spy)
    # when
    fingerprint(card_payout(number=CARD))
    # then
    bodies = [message for message in hashed if message.startswith(b"request-body")]
    assert len(bodies) == 1
    assert CARD.encode() not in bodies[0]
    assert b'"recipient_details":{' in bodies[0]


def test_bodies_differing_only_in_the_card_number_differ_in_fingerprint() -> None:
    assert fingerprint(card_payout(number=CARD)) != fingerprint(
        card_payout(number="4111111111111111")
    )


def test_the_same_fields_in_another_order_have_the_same_fingerprint() -> None:
    # given
    body = card_payout(number=CARD)
    reordered = dict(reversed(list(body.items())))
    reordered["recipient_details"] = dict(
        reversed(list(body["recipient_details"].items()))
    )
    # then
    assert fingerprint(reordered) == fingerprint(body)


def test_the_fingerprint_is_keyed_with_its_own_key_not_secret_key(
    settings: Any,
) -> None:
    # given
    body = card_payout(number=CARD)
    before = fingerprint(body)
    # when: SECRET_KEY rotates, then the fingerprint key changes
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    after_secret_rotation = fingerprint(body)
    settings.IDEMPOTENCY_FINGERPRINT_KEY = "another-fingerprint-key"
    after_key_change = fingerprint(body)
    # then
    assert after_secret_rotation == before
    assert after_key_change != before


@pytest.fixture
def legacy_key(staff_user: User, ledger: Payouts) -> str:
    """A key whose Created was stored before v2: its fingerprint is the old scheme."""
    body = card_payout(number=CARD)
    ledger.create_payout(
        new_payout(number=CARD),
        actor=TEST_ACTOR,
        scope=str(staff_user.pk),
        idempotency_key="old-key",
        request_fingerprint=legacy_fingerprint(body),
    )
    return "old-key"


def test_a_key_stored_with_an_old_fingerprint_still_replays(
    staff_client: APIClient, legacy_key: str
) -> None:
    # when
    response = post_payout(
        staff_client, card_payout(number=CARD), HTTP_IDEMPOTENCY_KEY=legacy_key
    )
    # then
    assert response.status_code == 201, response.content
    assert response["Idempotent-Replayed"] == "true"


def test_a_key_stored_with_an_old_fingerprint_refuses_another_body(
    staff_client: APIClient, legacy_key: str
) -> None:
    # when
    response = post_payout(
        staff_client,
        card_payout(number="4111111111111111"),
        HTTP_IDEMPOTENCY_KEY=legacy_key,
    )
    # then
    assert_problem(response, 422)


def test_a_new_key_is_not_replayed_on_its_old_style_fingerprint(
    staff_client: APIClient, ledger: Payouts, staff_user: User
) -> None:
    # given: a v2 key, and a request whose legacy fingerprint is all that matches
    body = card_payout(number=CARD)
    post_payout(staff_client, body, HTTP_IDEMPOTENCY_KEY="k1")
    # when / then: the v2 fingerprint differs, the legacy one is the same body's
    with pytest.raises(RequestMismatch):
        ledger.create_payout(
            new_payout(number=CARD),
            actor=TEST_ACTOR,
            scope=str(staff_user.pk),
            idempotency_key="k1",
            request_fingerprint="v2:" + "0" * 64,
            legacy_fingerprint=legacy_fingerprint(body),
        )
