"""Value objects: money and currency rules, card numbers, bank accounts, payout ids."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.apps import money_policy
from ledger.errors import InvalidValue
from ledger.values import (
    CardNumber,
    MoneyPolicy,
    PayoutStatus,
    bank_account_recipient,
    card_recipient,
    luhn_valid,
    mask_pan,
    payout_id_for,
)

VISA = "4242424242424242"
IBAN = "DE89370400440532013000"
BIC = "COBADEFFXXX"
MINOR_UNITS = {"EUR": 2, "USD": 2, "RUB": 2, "JPY": 0, "KWD": 3}


def check_digit(body: str) -> str:
    """The digit that makes `body + digit` pass the Luhn check."""
    return next(d for d in "0123456789" if luhn_valid(body + d))


card_numbers = (
    st.integers(min_value=11, max_value=18)
    .flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n))
    .map(lambda body: body + check_digit(body))
)


# Money: minor units


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1500", "EUR", Decimal("1500.00")),
        ("1500.5", "EUR", Decimal("1500.50")),
        ("1500.55", "EUR", Decimal("1500.55")),
        ("250000", "JPY", Decimal("250000")),
        ("1.234", "KWD", Decimal("1.234")),
        ("7", "KWD", Decimal("7.000")),
    ],
)
def test_an_amount_is_quantised_to_the_currency_minor_unit(
    amount: str, currency: str, expected: Decimal
) -> None:
    # when
    money = MoneyPolicy().money(amount, currency)
    # then
    assert money.amount == expected
    assert money.amount.as_tuple().exponent == -MINOR_UNITS[currency]


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1500.001", "EUR"), ("1.5", "JPY"), ("100.00", "JPY"), ("1.2345", "KWD")],
)
def test_more_decimal_places_than_the_minor_unit_are_refused(
    amount: str, currency: str
) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(amount, currency)
    # then
    assert refused.value.field == "amount"
    assert str(MINOR_UNITS[currency]) in refused.value.message


@pytest.mark.parametrize("amount", ["0", "0.00", "-1", "-0.01", 0, Decimal("-5")])
def test_an_amount_that_is_not_positive_is_refused(amount: str | int | Decimal) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(amount, "EUR")
    # then
    assert refused.value.field == "amount"


@pytest.mark.parametrize(
    "amount",
    ["abc", "1e3", "1,50", " 1", "", "NaN", "Infinity", 1.5, True, None],
)
def test_an_amount_that_is_not_an_exact_decimal_is_refused(amount: object) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(amount, "EUR")  # type: ignore[arg-type]
    # then
    assert refused.value.field == "amount"


@pytest.mark.parametrize(
    "amount", ["\uff11\uff15\uff10\uff10", "\u0661\u0665\u0660\u0660"]
)
def test_an_amount_in_non_ascii_digits_is_refused(amount: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(amount, "EUR")
    # then
    assert refused.value.field == "amount"


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity")])
def test_a_decimal_that_is_not_finite_is_refused(amount: Decimal) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(amount, "EUR")
    # then
    assert refused.value.field == "amount"


def test_the_maximum_amount_itself_is_accepted() -> None:
    # given
    policy = MoneyPolicy(max_amount=Decimal("1000"))
    # when
    money = policy.money("1000.00", "EUR")
    # then
    assert money.amount == Decimal("1000.00")


def test_an_amount_above_the_maximum_is_refused() -> None:
    # given
    policy = MoneyPolicy(max_amount=Decimal("1000"))
    # when
    with pytest.raises(InvalidValue) as refused:
        policy.money("1000.01", "EUR")
    # then
    assert refused.value.field == "amount"
    assert "1000" in refused.value.message


def test_an_integer_amount_is_held_to_the_maximum_too() -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money(10**40, "EUR")
    # then
    assert refused.value.field == "amount"


def test_the_default_maximum_is_one_billion() -> None:
    # given
    policy = MoneyPolicy()
    # when
    with pytest.raises(InvalidValue) as refused:
        policy.money("1000000001", "JPY")
    # then
    assert policy.money("1000000000", "JPY").amount == Decimal("1000000000")
    assert refused.value.field == "amount"


# Money: currencies


def test_a_currency_outside_the_allow_list_is_refused() -> None:
    # given
    policy = MoneyPolicy(currencies=frozenset({"EUR", "USD"}))
    # when
    with pytest.raises(InvalidValue) as refused:
        policy.money("10", "JPY")
    # then
    assert refused.value.field == "currency"
    assert "EUR, USD" in refused.value.message


def test_a_currency_on_the_allow_list_is_accepted() -> None:
    # given
    policy = MoneyPolicy(currencies=frozenset({"EUR", "USD"}))
    # when
    money = policy.money("10", "USD")
    # then
    assert money.currency == "USD"


@pytest.mark.parametrize("code", ["HRK", "VEF", "LTL", "ZWL", "DEM"])
def test_a_withdrawn_currency_is_refused(code: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money("10", code)
    # then
    assert refused.value.field == "currency"
    assert "no longer" in refused.value.message


@pytest.mark.parametrize("code", ["XAU", "XAG", "XTS", "XXX", "XDR"])
def test_a_code_that_is_not_payable_money_is_refused(code: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money("10", code)
    # then
    assert refused.value.field == "currency"


@pytest.mark.parametrize("code", ["ABC", "eur", "EURO", "", "E1R", 978])
def test_a_code_that_is_not_iso_4217_is_refused(code: object) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        MoneyPolicy().money("10", code)  # type: ignore[arg-type]
    # then
    assert refused.value.field == "currency"


# Money: the deployment's policy, from LEDGER (PAYOUT_CURRENCIES and PAYOUT_MAX_AMOUNT)


def test_the_settings_narrow_the_currencies_and_lower_the_ceiling(
    settings: Any,
) -> None:
    # given
    settings.LEDGER = {
        **settings.LEDGER,
        "CURRENCIES": ["EUR", "JPY"],
        "MAX_AMOUNT": "100",
    }
    # when
    policy = money_policy()
    # then
    assert policy == MoneyPolicy(
        currencies=frozenset({"EUR", "JPY"}), max_amount=Decimal("100")
    )


def test_without_payout_currencies_every_active_currency_is_accepted(
    settings: Any,
) -> None:
    # given
    settings.LEDGER = {**settings.LEDGER, "CURRENCIES": []}
    # when
    money = money_policy().money("10", "KWD")
    # then
    assert money.currency == "KWD"


valid_amounts = st.sampled_from(sorted(MINOR_UNITS)).flatmap(
    lambda currency: st.tuples(
        st.just(currency),
        st.integers(min_value=1, max_value=10 ** (9 + MINOR_UNITS[currency])),
    )
)


@settings(max_examples=60, deadline=None)
@given(valid=valid_amounts)
def test_any_valid_amount_round_trips_exactly(valid: tuple[str, int]) -> None:
    # given
    currency, minor_amount = valid
    places = MINOR_UNITS[currency]
    amount = Decimal(minor_amount).scaleb(-places)
    text = f"{amount:.{places}f}"
    # when
    money = MoneyPolicy().money(text, currency)
    # then
    assert money.amount == amount
    assert str(money.amount) == text
    assert money.currency == currency


# Cards


@pytest.mark.parametrize(
    "number", [VISA, "4111111111111111", "378282246310005", "4000000000000119"]
)
def test_known_test_cards_pass_the_luhn_check(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "4111111111111112"])
def test_a_mistyped_card_fails_the_luhn_check(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "digits", ["4242424242424241", "12345678901", "42424242424242424242", "4242-4242"]
)
def test_a_card_number_that_is_not_12_to_19_luhn_valid_digits_is_refused(
    digits: str,
) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        CardNumber(digits)
    # then
    assert refused.value.field == "recipient_details.number"


@pytest.mark.parametrize("zero", ["\uff10", "\u0660", "\u09e6"])
def test_a_card_number_in_non_ascii_digits_is_refused(zero: str) -> None:
    # given: the same Luhn-valid number in fullwidth, Arabic-Indic or Bengali digits
    digits = "".join(chr(ord(zero) + int(d)) for d in VISA)
    # when
    with pytest.raises(InvalidValue) as refused:
        CardNumber(digits)
    # then
    assert refused.value.field == "recipient_details.number"


def test_a_card_number_shows_only_its_first_six_and_last_four_digits() -> None:
    # when
    card = CardNumber(VISA)
    # then
    assert card.masked == "424242******4242"


def test_a_short_card_number_shows_only_its_last_four_digits() -> None:
    # given
    digits = "123456789" + "01" + check_digit("12345678901")
    # when
    masked = CardNumber(digits).masked
    # then
    assert masked == "********" + digits[-4:]


def test_str_and_repr_of_a_card_number_are_masked() -> None:
    # given
    card = CardNumber(VISA)
    # when
    shown = [str(card), repr(card), f"{card}", repr(card_recipient(VISA, "Ada"))]
    # then
    assert all(VISA not in text for text in shown)
    assert all("424242******4242" in text for text in shown)


def test_reveal_gives_the_full_number_back() -> None:
    assert CardNumber(VISA).reveal() == VISA


def test_two_card_numbers_with_the_same_digits_are_equal() -> None:
    assert CardNumber(VISA) == CardNumber(VISA)
    assert CardNumber(VISA) != CardNumber("4111111111111111")


@settings(max_examples=80, deadline=None)
@given(body=st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_a_number_completed_with_its_check_digit_is_luhn_valid(body: str) -> None:
    # given
    number = body + check_digit(body)
    # when
    other_digit = str((int(number[-1]) + 1) % 10)
    # then
    assert luhn_valid(number)
    assert not luhn_valid(number[:-1] + other_digit)


@settings(max_examples=80, deadline=None)
@given(number=card_numbers)
def test_the_mask_never_equals_the_number(number: str) -> None:
    # when
    card = CardNumber(number)
    # then
    assert card.masked != number
    assert number not in (str(card), repr(card))


@settings(max_examples=80, deadline=None)
@given(number=card_numbers)
def test_the_mask_keeps_at_most_the_first_six_and_last_four_digits(
    number: str,
) -> None:
    # when
    masked = mask_pan(number)
    # then
    assert len(masked) == len(number)
    shown = [i for i, char in enumerate(masked) if char != "*"]
    assert all(masked[i] == number[i] for i in shown)
    assert all(i < 6 or i >= len(number) - 4 for i in shown)
    assert masked.endswith(number[-4:])
    assert re.fullmatch(r"\d{0,6}\*+\d{4}", masked)


# Bank accounts


def test_an_iban_is_stored_in_its_compact_form() -> None:
    # when
    recipient = bank_account_recipient("de89 3704 0044 0532 0130 00", "Grace Hopper")
    # then
    assert recipient.iban == IBAN
    assert recipient.bic is None


def test_a_bic_from_the_iban_country_is_accepted() -> None:
    # when
    recipient = bank_account_recipient(IBAN, "Grace Hopper", BIC)
    # then
    assert recipient.bic == BIC


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013001",
        "DE8937040044053201300",
        "XX89370400440532013000",
        "DE89",
        "not an iban",
        "",
    ],
)
def test_an_invalid_iban_is_refused(iban: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        bank_account_recipient(iban, "Grace Hopper")
    # then
    assert refused.value.field == "recipient_details.iban"


@pytest.mark.parametrize("bic", ["NOTABIC", "NOTABIC!", "COBADE", "COBA1EFFXXX"])
def test_an_invalid_bic_is_refused(bic: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        bank_account_recipient(IBAN, "Grace Hopper", bic)
    # then
    assert refused.value.field == "recipient_details.bic"


@pytest.mark.parametrize("bic", ["BNPAFRPPXXX", "BNPAFRPP"])
def test_a_bic_from_another_country_than_the_iban_is_refused(bic: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        bank_account_recipient(IBAN, "Grace Hopper", bic)
    # then
    assert refused.value.field == "recipient_details.bic"
    assert "FR" in refused.value.message


@pytest.mark.parametrize("holder", ["", "   ", "x" * 201])
def test_a_blank_or_overlong_holder_is_refused(holder: str) -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        bank_account_recipient(IBAN, holder)
    # then
    assert refused.value.field == "recipient_details.holder"


def test_a_card_recipient_masks_its_number_when_shown() -> None:
    # when
    shown = card_recipient(VISA, " Ada Lovelace ").masked()
    # then
    assert shown == {
        "type": "card",
        "number": "424242******4242",
        "holder": "Ada Lovelace",
    }


# Statuses


def test_only_completed_failed_and_cancelled_are_terminal() -> None:
    # when
    terminal = {status for status in PayoutStatus if status.is_terminal}
    # then
    assert terminal == {
        PayoutStatus.COMPLETED,
        PayoutStatus.FAILED,
        PayoutStatus.CANCELLED,
    }


# Payout ids

scopes = st.text(alphabet=st.characters(blacklist_characters="\x1f"), max_size=20)
keys = st.text(min_size=1, max_size=255)


@settings(max_examples=60, deadline=None)
@given(scope=scopes, key=keys)
def test_the_same_scope_and_key_always_name_the_same_payout(
    scope: str, key: str
) -> None:
    assert payout_id_for(scope, key) == payout_id_for(scope, key)


@settings(max_examples=60, deadline=None)
@given(first=st.tuples(scopes, keys), second=st.tuples(scopes, keys))
def test_different_scopes_or_keys_name_different_payouts(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    # given
    if first == second:
        second = (second[0] + "1", second[1])
    # then
    assert payout_id_for(*first) != payout_id_for(*second)


def test_a_payout_id_is_stable_across_releases() -> None:
    # A changed namespace or separator would turn every stored idempotency key into a
    # new payout: a request retried across a deploy would pay twice.
    assert payout_id_for("7", "order-118") == UUID(
        "7bd5903f-2d45-5b85-8d26-a728b414790d"
    )
