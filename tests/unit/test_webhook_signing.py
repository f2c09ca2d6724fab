"""Signatures are Standard Webhooks ones: the reference library verifies them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ledger.cipher import BindingMismatch
from webhooks.models import message_id
from webhooks.signing import new_secret, seal, signature_headers, unseal

PAYLOAD = json.dumps({"type": "payout.created", "data": {"version": 1}})


def test_a_signed_delivery_verifies_with_the_standardwebhooks_library() -> None:
    # given
    secret = new_secret()
    # when
    headers = signature_headers("msg_1", PAYLOAD, [secret])
    # then
    assert Webhook(secret).verify(PAYLOAD, headers) == json.loads(PAYLOAD)


def test_another_secret_does_not_verify() -> None:
    headers = signature_headers("msg_1", PAYLOAD, [new_secret()])
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(PAYLOAD, headers)


def test_an_altered_body_or_id_does_not_verify() -> None:
    secret = new_secret()
    headers = signature_headers("msg_1", PAYLOAD, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(PAYLOAD.replace("1", "2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(PAYLOAD, {**headers, "webhook-id": "msg_2"})


def test_an_old_timestamp_is_refused_by_the_receiver() -> None:
    secret = new_secret()
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = signature_headers("msg_1", PAYLOAD, [secret], at=old)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(PAYLOAD, headers)


def test_during_a_rotation_either_secret_verifies() -> None:
    # given
    current, previous = new_secret(), new_secret()
    # when
    headers = signature_headers("msg_1", PAYLOAD, [current, previous])
    # then
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (current, previous):
        Webhook(secret).verify(PAYLOAD, headers)


@given(st.text(max_size=300))
def test_any_body_signed_verifies(body: str) -> None:
    secret = new_secret()
    headers = signature_headers("msg_x", body, [secret])
    Webhook(secret).verify(body, headers, json_parse=False)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(Webhook(secret)._whsecret) == 32
    assert new_secret() != secret


def test_a_sealed_secret_opens_only_for_its_endpoint() -> None:
    # given
    secret, endpoint, other = new_secret(), uuid.uuid4(), uuid.uuid4()
    sealed = seal(secret, endpoint)
    # then
    assert secret.encode() not in sealed
    assert unseal(sealed, endpoint) == secret
    with pytest.raises(BindingMismatch):
        unseal(sealed, other)


def test_message_ids_are_stable_per_endpoint_and_event() -> None:
    endpoint, payout = uuid.uuid4(), uuid.uuid4()
    assert message_id(endpoint, payout, 2) == message_id(endpoint, payout, 2)
    assert message_id(endpoint, payout, 2) != message_id(endpoint, payout, 3)
    assert message_id(endpoint, payout, 2) != message_id(uuid.uuid4(), payout, 2)
    assert message_id(endpoint, payout, 2).startswith("msg_")
