"""POST /api/v1/payouts/: 201 on a valid body, a 400 naming each bad field otherwise."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.api.support import EVENTS, PAYOUTS, assert_problem, detail_url, post_payout
from tests.builders import bank_payout, card_payout

# A valid request, then what is wrong with each variant: the field it breaks, and how.
CARD = card_payout()["recipient_details"]
BANK = bank_payout()["recipient_details"]


def card(**changes: object) -> dict[str, object]:
    return {**CARD, **changes}


def bank(**changes: object) -> dict[str, object]:
    return {**BANK, **changes}


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


def test_an_iban_written_with_spaces_is_stored_in_electronic_form(staff_client) -> None:
    # given
    details = bank(iban="DE89 3704 0044 0532 0130 00")
    # when
    response = post_payout(staff_client, bank_payout(recipient_details=details))
    # then
    assert response.json()["recipient_details"]["iban"] == "DE89370400440532013000"


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
        ("EUR", 15, "15.00"),
        ("JPY", "100", "100"),
        ("KWD", "1.234", "1.234"),
        ("USD", "0.01", "0.01"),
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


@pytest.mark.parametrize("number", ["500000000009", "4123456789012345677"])
def test_card_numbers_of_12_and_19_luhn_valid_digits_are_accepted(
    staff_client, number
) -> None:
    # when
    response = post_payout(staff_client, card_payout(number=number))
    # then
    assert response.status_code == 201
    assert number not in response.content.decode()


def test_a_short_card_number_shows_only_its_last_four_digits(staff_client) -> None:
    # when
    response = post_payout(staff_client, card_payout(number="500000000009"))
    # then
    assert response.json()["recipient_details"]["number"] == "********0009"


def test_creating_answers_pending_and_does_not_wait_for_processing(
    staff_client,
) -> None:
    # when
    created = post_payout(staff_client).json()
    # then
    assert staff_client.get(detail_url(created["id"])).json()["status"] == "pending"


# Validation: every kind of bad field is a 400 naming that field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (card_payout(amount="0"), "amount"),
        (card_payout(amount="0.00"), "amount"),
        (card_payout(amount="-1.00"), "amount"),
        (card_payout(amount="abc"), "amount"),
        (card_payout(amount="1e5"), "amount"),
        (card_payout(amount=" 100"), "amount"),
        (card_payout(amount="1,00"), "amount"),
        (card_payout(amount=15.5), "amount"),
        (card_payout(amount=True), "amount"),
        (card_payout(amount=None), "amount"),
        (card_payout(amount=""), "amount"),
        (card_payout(amount=["1"]), "amount"),
        (card_payout(amount="NaN"), "amount"),
        (card_payout(amount="Infinity"), "amount"),
        (card_payout(amount=10**40), "amount"),
        (card_payout(amount="1000000000.01"), "amount"),
        (card_payout(amount="10.001", currency="EUR"), "amount"),
        (card_payout(amount="100.5", currency="JPY"), "amount"),
        (card_payout(amount="100.00", currency="JPY"), "amount"),
        (card_payout(amount="1.2345", currency="KWD"), "amount"),
        (card_payout(currency="ABC"), "currency"),
        (card_payout(currency="DEM"), "currency"),
        (card_payout(currency="XAU"), "currency"),
        (card_payout(currency="eur"), "currency"),
        (card_payout(currency="EURO"), "currency"),
        (card_payout(currency=""), "currency"),
        (card_payout(currency=978), "currency"),
        (card_payout(currency=None), "currency"),
        (card_payout(currency=["EUR"]), "currency"),
        (card_payout(description="x" * 501), "description"),
        (card_payout(description=None), "description"),
        (card_payout(description={"a": 1}), "description"),
        (card_payout(description="a\x00b"), "description"),
        (card_payout(recipient_details="4242424242424242"), "recipient_details"),
        (card_payout(recipient_details=[]), "recipient_details"),
        (card_payout(recipient_details=None), "recipient_details"),
    ],
    ids=lambda v: json.dumps(v)[:60] if isinstance(v, dict) else str(v),
)
def test_a_bad_top_level_field_is_a_400_naming_it(staff_client, body, field) -> None:
    # when
    response = post_payout(staff_client, body)
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [field]
    assert all(isinstance(m, str) and m for m in problem["errors"][field])


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (card(number="4242424242424241"), "recipient_details.number"),
        (card(number="42424242424"), "recipient_details.number"),
        (card(number="42424242424242424242"), "recipient_details.number"),
        (card(number="4242 4242 4242 4242"), "recipient_details.number"),
        (card(number="4242-4242-4242-4242"), "recipient_details.number"),
        (card(number="424242424242424x"), "recipient_details.number"),
        (card(number=""), "recipient_details.number"),
        (card(number=None), "recipient_details.number"),
        (card(holder=""), "recipient_details.holder"),
        (card(holder="   "), "recipient_details.holder"),
        (card(holder="x" * 201), "recipient_details.holder"),
        (card(holder=["Ada"]), "recipient_details.holder"),
        (bank(iban="DE89370400440532013001"), "recipient_details.iban"),
        (bank(iban="DE8937040044053201300"), "recipient_details.iban"),
        (bank(iban="XX89370400440532013000"), "recipient_details.iban"),
        (bank(iban="not an iban"), "recipient_details.iban"),
        (bank(iban=""), "recipient_details.iban"),
        (bank(iban=["DE89370400440532013000"]), "recipient_details.iban"),
        (bank(bic="NOTABIC!"), "recipient_details.bic"),
        (bank(bic="COBADE"), "recipient_details.bic"),
        (bank(bic="BNPAFRPP"), "recipient_details.bic"),
        (bank(holder=""), "recipient_details.holder"),
        (card(type="wallet"), "recipient_details.type"),
        (card(type=""), "recipient_details.type"),
        (card(type=None), "recipient_details.type"),
        (card(type=["card"]), "recipient_details.type"),
        (card(type={"card": 1}), "recipient_details.type"),
        ({"number": "4242424242424242", "holder": "Ada"}, "recipient_details.type"),
    ],
    ids=lambda v: json.dumps(v)[:70] if isinstance(v, dict) else str(v),
)
def test_bad_recipient_details_are_a_400_naming_the_nested_field(
    staff_client, details, field
) -> None:
    # when
    response = post_payout(staff_client, card_payout(recipient_details=details))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [field]


@pytest.mark.parametrize("missing", ["amount", "currency", "recipient_details"])
def test_a_missing_required_field_is_a_400_naming_it(staff_client, missing) -> None:
    # given
    body = card_payout()
    del body[missing]
    # when
    response = post_payout(staff_client, body)
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [missing]


@pytest.mark.parametrize(
    ("details", "missing"),
    [
        ({"type": "card", "holder": "Ada"}, "number"),
        ({"type": "card", "number": "4242424242424242"}, "holder"),
        ({"type": "bank_account", "holder": "Grace"}, "iban"),
        ({"type": "bank_account", "iban": "DE89370400440532013000"}, "holder"),
    ],
)
def test_a_missing_recipient_field_is_a_400_naming_it(
    staff_client, details, missing
) -> None:
    # when
    response = post_payout(staff_client, card_payout(recipient_details=details))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [f"recipient_details.{missing}"]


@pytest.mark.parametrize("extra", ["status", "id", "version", "amount_minor"])
def test_an_unknown_top_level_field_is_a_400_naming_it(staff_client, extra) -> None:
    # when
    response = post_payout(staff_client, card_payout(**{extra: "x"}))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [extra]


@pytest.mark.parametrize(
    ("details", "extra"),
    [
        (card(cvv="123"), "cvv"),
        (card(iban="DE89370400440532013000"), "iban"),
        (bank(number="4242424242424242"), "number"),
    ],
)
def test_an_unknown_recipient_field_is_a_400_naming_it(
    staff_client, details, extra
) -> None:
    # when
    response = post_payout(staff_client, card_payout(recipient_details=details))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [f"recipient_details.{extra}"]


def test_several_bad_fields_each_get_their_own_messages(staff_client) -> None:
    # given
    body = card_payout(amount="-5", currency="eur", description="x" * 501)
    # when
    response = post_payout(staff_client, body)
    # then
    problem = assert_problem(response, 400)
    assert set(problem["errors"]) >= {"currency", "description"}


def test_an_amount_and_a_card_number_refused_by_the_ledger_are_both_named(
    staff_client,
) -> None:
    # given
    body = card_payout(amount="0", number="4242424242424241")
    # when
    response = post_payout(staff_client, body)
    # then
    problem = assert_problem(response, 400)
    assert set(problem["errors"]) == {"amount", "recipient_details.number"}


def test_an_inactive_currency_is_refused_as_no_longer_active(staff_client) -> None:
    # when
    response = post_payout(staff_client, card_payout(currency="DEM"))
    # then
    problem = assert_problem(response, 400)
    assert "no longer" in problem["errors"]["currency"][0]


def test_a_currency_outside_payout_currencies_is_refused(
    staff_client, money_settings
) -> None:
    # given
    money_settings(CURRENCIES=["EUR", "JPY"])
    # when
    response = post_payout(staff_client, card_payout(currency="USD"))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["currency"]


def test_a_currency_inside_payout_currencies_is_accepted(
    staff_client, money_settings
) -> None:
    # given
    money_settings(CURRENCIES=["EUR", "JPY"])
    # when
    response = post_payout(staff_client, bank_payout(currency="JPY"))
    # then
    assert response.status_code == 201


def test_an_amount_above_a_lowered_payout_max_amount_is_refused(
    staff_client, money_settings
) -> None:
    # given
    money_settings(MAX_AMOUNT="100")
    # when
    response = post_payout(staff_client, card_payout(amount="100.01"))
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["amount"]


def test_an_amount_equal_to_payout_max_amount_is_accepted(
    staff_client, money_settings
) -> None:
    # given
    money_settings(MAX_AMOUNT="100")
    # when
    response = post_payout(staff_client, card_payout(amount="100.00"))
    # then
    assert response.status_code == 201


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


def test_an_oversized_body_is_a_4xx_problem(staff_client) -> None:
    # given
    raw = json.dumps(card_payout(description="x" * 100_000))
    # when
    response = staff_client.post(PAYOUTS, raw, content_type="application/json")
    # then
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)


# Idempotency-Key


def test_the_same_key_and_body_replay_the_original_answer(staff_client) -> None:
    # given
    first = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # when
    second = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"


def test_a_first_request_with_a_key_is_not_marked_as_replayed(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_a_replayed_request_records_no_second_payout(staff_client) -> None:
    # given
    post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # when
    post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert [e["type"] for e in staff_client.get(EVENTS).json()] == ["Created"]


def test_a_replay_returns_the_original_answer_after_the_payout_changed(
    staff_client,
) -> None:
    # given
    first = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    staff_client.delete(detail_url(first.json()["id"]))
    # when
    second = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert second.status_code == 201
    assert second.json() == first.json()


def test_a_key_sent_with_the_same_fields_in_another_order_is_a_replay(
    staff_client,
) -> None:
    # given
    body = card_payout()
    post_payout(staff_client, body, HTTP_IDEMPOTENCY_KEY="order-118")
    reordered = dict(reversed(list(body.items())))
    # when
    response = post_payout(staff_client, reordered, HTTP_IDEMPOTENCY_KEY="order-118")
    # then
    assert response["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_a_422_problem(staff_client) -> None:
    # given
    post_payout(staff_client, card_payout(amount="10.00"), HTTP_IDEMPOTENCY_KEY="k1")
    # when
    response = post_payout(
        staff_client, card_payout(amount="11.00"), HTTP_IDEMPOTENCY_KEY="k1"
    )
    # then
    assert_problem(response, 422)


def test_a_key_reused_with_another_body_creates_nothing(staff_client) -> None:
    # given
    post_payout(staff_client, card_payout(amount="10.00"), HTTP_IDEMPOTENCY_KEY="k1")
    # when
    post_payout(staff_client, card_payout(amount="11.00"), HTTP_IDEMPOTENCY_KEY="k1")
    # then
    assert len(staff_client.get(EVENTS).json()) == 1


def test_a_key_of_255_characters_is_accepted(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="k" * 255)
    # then
    assert response.status_code == 201


def test_a_key_longer_than_255_characters_is_a_400_problem(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="k" * 256)
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["Idempotency-Key"]


def test_an_empty_key_is_a_400_problem(staff_client) -> None:
    # when
    response = post_payout(staff_client, HTTP_IDEMPOTENCY_KEY="")
    # then
    assert_problem(response, 400)


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


def test_two_posts_without_a_key_create_two_payouts(staff_client) -> None:
    # given
    first = post_payout(staff_client)
    # when
    second = post_payout(staff_client)
    # then
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
