"""The API's input rules of shape and format: the create and cancel bodies, `as_of`,
`limit`. Each field is named as the problem document names it (api.exceptions.flatten);
tests/api checks one case of each over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from api.asof import parse_as_of
from api.exceptions import flatten
from api.pagination import parse_limit
from api.serializers import PayoutCreateInput, PayoutUpdateInput
from tests.builders import bank_payout, card_payout

CARD = card_payout()["recipient_details"]
BANK = bank_payout()["recipient_details"]


def card(**changes: object) -> dict[str, object]:
    return {**CARD, **changes}


def bank(**changes: object) -> dict[str, object]:
    return {**BANK, **changes}


def refused_fields(serializer_class: type, body: Any) -> list[str]:
    """The fields the serializer names as wrong, as dotted paths; [] if it accepts."""
    serializer = serializer_class(data=body)
    if serializer.is_valid():
        return []
    return sorted(flatten(serializer.errors))


def shown(value: object) -> str:
    """A short test id for a body or a value."""
    return repr(value)[:60]


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


# The create body: each value of the wrong shape, each missing required field and each
# unknown field is named.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (card_payout(amount=15.5), "amount"),
        (card_payout(amount=True), "amount"),
        (card_payout(amount=None), "amount"),
        (card_payout(amount=["1"]), "amount"),
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
        (without(card_payout(), "amount"), "amount"),
        (without(card_payout(), "currency"), "currency"),
        (without(card_payout(), "recipient_details"), "recipient_details"),
        (card_payout(status="x"), "status"),
        (card_payout(id="x"), "id"),
        (card_payout(version="x"), "version"),
        (card_payout(amount_minor="x"), "amount_minor"),
    ],
    ids=shown,
)
def test_a_bad_top_level_field_is_named(body: Any, field: str) -> None:
    assert refused_fields(PayoutCreateInput, body) == [field]


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (card(number="42424242424"), "number"),
        (card(number="42424242424242424242"), "number"),
        (card(number="4242 4242 4242 4242"), "number"),
        (card(number="4242-4242-4242-4242"), "number"),
        (card(number="424242424242424x"), "number"),
        (card(number=""), "number"),
        (card(number=None), "number"),
        (card(holder=""), "holder"),
        (card(holder="   "), "holder"),
        (card(holder="x" * 201), "holder"),
        (card(holder=["Ada"]), "holder"),
        (bank(iban=""), "iban"),
        (bank(iban=["DE89370400440532013000"]), "iban"),
        (bank(holder=""), "holder"),
        (card(type="wallet"), "type"),
        (card(type=""), "type"),
        (card(type=None), "type"),
        (card(type=["card"]), "type"),
        (card(type={"card": 1}), "type"),
        (without(CARD, "type"), "type"),
        (without(CARD, "number"), "number"),
        (without(CARD, "holder"), "holder"),
        (without(BANK, "iban"), "iban"),
        (without(BANK, "holder"), "holder"),
        (card(cvv="123"), "cvv"),
        (card(iban=BANK["iban"]), "iban"),
        (bank(number=CARD["number"]), "number"),
    ],
    ids=shown,
)
def test_a_bad_recipient_field_is_named_by_its_path(
    details: dict[str, object], field: str
) -> None:
    # when
    refused = refused_fields(PayoutCreateInput, card_payout(recipient_details=details))
    # then
    assert refused == [f"recipient_details.{field}"]


@pytest.mark.parametrize(
    "body",
    [
        card_payout(),
        card_payout(amount=15),
        card_payout(description="x" * 500),
        card_payout(description=""),
        without(card_payout(), "description"),
        card_payout(number="500000000009"),
        card_payout(number="4123456789012345677"),
        bank_payout(),
        bank_payout(recipient_details=without(BANK, "bic")),
        bank_payout(recipient_details=bank(bic=None)),
        bank_payout(recipient_details=bank(bic="")),
    ],
    ids=shown,
)
def test_a_body_of_the_right_shape_is_left_to_the_ledger(body: Any) -> None:
    assert refused_fields(PayoutCreateInput, body) == []


def test_a_missing_description_is_an_empty_one() -> None:
    # given
    serializer = PayoutCreateInput(data=without(card_payout(), "description"))
    # when
    serializer.is_valid(raise_exception=True)
    # then
    assert serializer.validated_data["description"] == ""


# The cancel body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"reason": "x"}, "status"),
        ({"status": "archived"}, "status"),
        ({"status": "CANCELLED"}, "status"),
        ({"status": None}, "status"),
        ({"status": ["cancelled"]}, "status"),
        ({"status": "cancelled", "reason": "x" * 501}, "reason"),
        ({"status": "cancelled", "reason": None}, "reason"),
        ({"status": "cancelled", "amount": "1.00"}, "amount"),
    ],
    ids=shown,
)
def test_a_bad_cancel_body_names_the_field(body: Any, field: str) -> None:
    assert refused_fields(PayoutUpdateInput, body) == [field]


def test_a_cancel_without_a_reason_has_an_empty_one() -> None:
    # given
    serializer = PayoutUpdateInput(data={"status": "cancelled"})
    # when
    serializer.is_valid(raise_exception=True)
    # then
    assert serializer.validated_data == {"status": "cancelled", "reason": ""}


# as_of


@pytest.mark.parametrize(
    ("raw", "instant"),
    [
        ("2026-03-02T09:00:01Z", datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC)),
        (
            "2026-03-02T09:00:01.500000Z",
            datetime(2026, 3, 2, 9, 0, 1, 500000, tzinfo=UTC),
        ),
        ("2026-03-02T10:00:02+01:00", datetime(2026, 3, 2, 9, 0, 2, tzinfo=UTC)),
        # a "+" left unencoded in a query string arrives as a space
        ("2026-03-02T10:00:02 01:00", datetime(2026, 3, 2, 9, 0, 2, tzinfo=UTC)),
    ],
)
def test_as_of_is_read_as_an_instant_in_utc(raw: str, instant: datetime) -> None:
    # when
    parsed = parse_as_of(raw)
    # then
    assert parsed == instant
    assert parsed is not None and parsed.utcoffset() is not None


def test_no_as_of_is_none() -> None:
    assert parse_as_of(None) is None


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "1",
        "",
        "2026-03-02",
        "2026-03-02T09:00:01",
        "2026-13-02T09:00:01Z",
        "2026-03-02T25:00:00Z",
        "99999-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_an_as_of_that_is_not_an_rfc3339_instant_in_range_is_refused(
    raw: str,
) -> None:
    # when
    with pytest.raises(ValidationError) as refused:
        parse_as_of(raw)
    # then
    assert list(flatten(refused.value.detail)) == ["as_of"]


# limit


@pytest.mark.parametrize(
    ("raw", "limit"), [(None, 50), ("", 50), ("1", 1), ("200", 200), ("007", 7)]
)
def test_a_limit_from_1_to_the_maximum_is_taken_and_none_is_the_default(
    raw: str | None, limit: int
) -> None:
    assert parse_limit(raw, default=50, maximum=200) == limit


@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "201", "abc", "1.5", "²", "+5", " 5", "5_0", "\u0665", "9" * 40],
)
def test_a_limit_that_is_not_plain_digits_from_1_to_the_maximum_is_refused(
    raw: str,
) -> None:
    # when
    with pytest.raises(ValidationError) as refused:
        parse_limit(raw, default=50, maximum=200)
    # then
    assert list(flatten(refused.value.detail)) == ["limit"]
