"""POST /api/v1/payouts/: 201 on a valid body, a 400 naming each bad field otherwise,
and the Idempotency-Key replay."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.api.support import (
    EVENTS,
    PAYOUTS,
    assert_invalid,
    assert_problem,
    detail_url,
    post_payout,
)
from tests.builders import bank_payout, card_payout

CARD = card_payout()["recipient_details"]
BANK = bank_payout()["recipient_details"]


# Creation


def test_a_valid_card_payout_is_created_pending_at_version_1(staff_client) -> None:
    # given
    body = card_payout(amount="1500.00", currency="EUR", description="Invoice 118")
    # when
    response = post_payout(staff_client, body)
    # then
    assert response.status_code == 201
    payout = response.json()
    assert uuid.UUID(payout["id"])
    assert payout["amount"] == "1500.00"
    assert payout["currency"] == "EUR"
    assert payout["description"] == "Invoice 118"
    assert payout["status"] == "pending"
    assert payout["failure_reason"] is None
    assert payout["version"] == 1


def test_a_created_payout_has_equal_rfc3339_utc_timestamps(staff_client) -> None:
    # when
    payout = post_payout(staff_client).json()
    # then
    assert payout["created_at"] == payout["updated_at"]
    assert payout["created_at"].endswith("Z")


def test_the_created_payout_carries_its_etag_and_location(staff_client) -> None:
    # when
    response = post_payout(staff_client)
    # then
    assert response["ETag"] == '"1"'
    assert response["Location"] == detail_url(response.json()["id"])


def test_the_card_number_is_returned_masked_and_never_in_full(staff_client) -> None:
    # given
    number = "4111111111111111"
    # when
    response = post_payout(staff_client, card_payout(number=number))
    # then
    assert response.json()["recipient_details"] == {
        "type": "card",
        "number": "411111******1111",
        "holder": "Ada Lovelace",
    }
    assert number not in response.content.decode()


def test_a_valid_bank_account_payout_is_created(staff_client) -> None:
    # given
    body = bank_payout()
    # when
    response = post_payout(staff_client, body)
    # then
    assert response.status_code == 201
    assert response.json()["amount"] == "250000"
    assert response.json()["recipient_details"] == body["recipient_details"]


def test_a_bank_account_payout_without_bic_has_a_null_bic(staff_client) -> None:
    # given
    details = {k: v for k, v in BANK.items() if k != "bic"}
    # when
    response = post_payout(staff_client, bank_payout(recipient_details=details))
    # then
    assert response.status_code == 201
    assert response.json()["recipient_details"]["bic"] is None


def test_a_payout_without_description_gets_an_empty_one(staff_client) -> None:
    # given
    body = card_payout()
    del body["description"]
    # when
    response = post_payout(staff_client, body)
    # then
    assert response.status_code == 201
    assert response.json()["description"] == ""


def test_a_description_of_500_characters_is_accepted(staff_client) -> None:
    # when
    response = post_payout(staff_client, card_payout(description="x" * 500))
    # then
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("currency", "amount", "shown"),
    [
        ("EUR", "10.5", "10.50"),
        ("KWD", "1.234", "1.234"),
    ],
)
def test_an_amount_within_the_currency_minor_unit_is_accepted_and_normalised(
    staff_client, currency, amount, shown
) -> None:
    # when
    response = post_payout(staff_client, card_payout(amount=amount, currency=currency))
    # then
    assert response.status_code == 201
    assert response.json()["amount"] == shown


def test_the_default_ceiling_of_one_billion_is_accepted(staff_client) -> None:
    # when
    response = post_payout(staff_client, card_payout(amount="1000000000.00"))
    # then
    assert response.status_code == 201


# Validation: a 400 problem naming each bad field; the rules themselves are tested in
# tests/unit (test_values.py for the ledger's, test_api_inputs.py for the shapes).


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (card_payout(amount="0"), "amount"),
        (card_payout(amount="10.001", currency="EUR"), "amount"),
        (card_payout(amount="1000000000.01"), "amount"),
        (card_payout(amount=15.5), "amount"),
        (card_payout(currency="DEM"), "currency"),
        (card_payout(currency="eur"), "currency"),
        (card_payout(description="x" * 501), "description"),
        (card_payout(recipient_details=[]), "recipient_details"),
        (
            card_payout(recipient_details={**CARD, "type": "wallet"}),
            "recipient_details.type",
        ),
        (
            card_payout(number="4242424242424241"),
            "recipient_details.number",
        ),
        (card_payout(number="42424242424"), "recipient_details.number"),
        (
            card_payout(recipient_details={**CARD, "holder": ""}),
            "recipient_details.holder",
        ),
        (
            card_payout(recipient_details={**BANK, "iban": "DE89370400440532013001"}),
            "recipient_details.iban",
        ),
        (
            card_payout(recipient_details={**BANK, "bic": "BNPAFRPP"}),
            "recipient_details.bic",
        ),
    ],
    ids=[
        "amount not positive",
        "amount beyond the minor unit",
        "amount above the default ceiling",
        "amount not a string",
        "currency withdrawn",
        "currency not in capitals",
        "description too long",
        "recipient not an object",
        "recipient type unknown",
        "card number not luhn valid",
        "card number too short",
        "holder blank",
        "iban check digits wrong",
        "bic of another country",
    ],
)
def test_a_bad_field_is_a_400_naming_it(staff_client, body, field) -> None:
    # when
    response = post_payout(staff_client, body)
    # then
    assert_invalid(response, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in card_payout().items() if k != "amount"}, "amount"),
        (
            card_payout(recipient_details={"type": "card", "holder": "Ada"}),
            "recipient_details.number",
        ),
        (card_payout(status="x"), "status"),
        (
            card_payout(recipient_details={**CARD, "cvv": "123"}),
            "recipient_details.cvv",
        ),
    ],
    ids=["missing", "missing in recipient", "unknown", "unknown in recipient"],
)
def test_a_missing_or_unknown_field_is_a_400_naming_it(
    staff_client, body, field
) -> None:
    # when
    response = post_payout(staff_client, body)
    # then
    assert_invalid(response, field)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            card_payout(amount="-5", currency="eur", description="x" * 501),
            ["currency", "description"],
        ),
        (
            card_payout(amount="0", number="4242424242424241"),
            ["amount", "recipient_details.number"],
        ),
    ],
    ids=["shape", "ledger"],
)
def test_several_bad_fields_each_get_their_own_messages(
    staff_client, body, fields
) -> None:
    # when
    response = post_payout(staff_client, body)
    # then
    assert_invalid(response, *fields)


@pytest.mark.parametrize(
    ("overrides", "body", "field"),
    [
        (
            {"CURRENCIES": ["EUR", "JPY"]},
            card_payout(currency="USD"),
            "currency",
        ),
        ({"MAX_AMOUNT": "100"}, card_payout(amount="100.01"), "amount"),
    ],
    ids=["PAYOUT_CURRENCIES", "PAYOUT_MAX_AMOUNT"],
)
def test_the_money_settings_narrow_what_is_accepted(
    staff_client, money_settings, overrides, body, field
) -> None:
    # given
    money_settings(**overrides)
    # when
    response = post_payout(staff_client, body)
    # then
    assert_invalid(response, field)


# Bodies that are not a payout object at all


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": "1.00",',
        b"not json",
        b"\xff\xfe\x00",
        b'{"amount": NaN}',
        b"{'a': 1}",
    ],
)
def test_malformed_json_is_a_400_problem(staff_client, raw) -> None:
    # when
    response = staff_client.post(PAYOUTS, raw, content_type="application/json")
    # then
    assert_problem(response, 400)


def test_json_nested_thousands_of_levels_deep_is_a_400_problem(staff_client) -> None:
    # given
    raw = b"[" * 5000 + b"]" * 5000
    # when
    response = staff_client.post(PAYOUTS, raw, content_type="application/json")
    # then
    assert_problem(response, 400)


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"payout"', b"42", b"null", b""])
def test_a_json_body_that_is_not_an_object_is_a_400_problem(staff_client, raw) -> None:
    # when
    response = staff_client.post(PAYOUTS, raw, content_type="application/json")
    # then
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/xml"],
)
def test_a_body_that_is_not_json_is_a_415_problem(staff_client, content_type) -> None:
    # when
    response = staff_client.post(
        PAYOUTS, json.dumps(card_payout()), content_type=content_type
    )
    # then
    assert_problem(response, 415)


# Idempotency-Key


def test_the_same_key_and_body_replay_the_original_answer_and_record_nothing(
    staff_client,
) -> None:
    # given
    first = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # when
    second = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert [e["type"] for e in staff_client.get(EVENTS).json()] == ["Created"]


def test_a_first_request_with_a_key_is_not_marked_as_replayed(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_the_same_key_with_another_body_is_a_422_problem_and_records_nothing(
    staff_client,
) -> None:
    # given
    post_payout(staff_client, card_payout(amount="10.00"), HTTP_IDEMPOTENCY_KEY="k1")
    # when
    response = post_payout(
        staff_client, card_payout(amount="11.00"), HTTP_IDEMPOTENCY_KEY="k1"
    )
    # then
    assert_problem(response, 422)
    assert len(staff_client.get(EVENTS).json()) == 1


def test_a_key_of_255_characters_is_accepted(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="k" * 255)
    # then
    assert response.status_code == 201


@pytest.mark.parametrize("key", ["k" * 256, ""], ids=["256 characters", "empty"])
def test_a_key_outside_1_to_255_characters_is_a_400_naming_it(
    staff_client, key
) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY=key)
    # then
    assert_invalid(response, "Idempotency-Key")


def test_keys_are_scoped_to_the_caller(staff_client, staff_user) -> None:
    # given
    other = User.objects.create_user("other-staff", is_staff=True)
    other_client = APIClient()
    other_client.force_authenticate(other)
    mine = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="shared-key")
    # when
    theirs = post_payout(other_client, HTTP_IDEMPOTENCY_KEY="shared-key")
    # then
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
