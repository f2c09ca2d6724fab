"""Value objects of the payout domain: money, recipients, card numbers, statuses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import moneyed
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from ledger.errors import InvalidValue

# py-moneyed carries the ISO 4217 table (code, minor unit, countries). ISO lists these
# codes with "N.A." as minor unit: metals, bond units, SDR, test and no-currency codes.
# They are not money one can pay out, so they are never accepted.
_NOT_PAYABLE = frozenset(
    [
        "XAG",
        "XAU",
        "XPD",
        "XPT",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XSU",
        "XUA",
        "XTS",
        "XXX",
    ],
)
# Field limits: the API's inputs and the read model's columns are sized by these.
# PAYOUT_MAX_AMOUNT's default.
DEFAULT_MAX_AMOUNT = Decimal("1000000000")
# Digits an amount string may have before the point, and the most an amount has
# after it (ISO 4217's largest minor unit: CLF, UYW).
AMOUNT_DIGITS = 20
AMOUNT_PLACES = 4
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 12, 19
MAX_HOLDER = 200
_NAMESPACE = uuid.UUID("7b0b8f5e-6f43-4d4a-9c8e-2b8f3e0c6a11")


class PayoutStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self]


# The whole state machine of SPEC.md: no other transition exists.
TRANSITIONS: dict[PayoutStatus, tuple[PayoutStatus, ...]] = {
    PayoutStatus.PENDING: (PayoutStatus.PROCESSING, PayoutStatus.CANCELLED),
    PayoutStatus.PROCESSING: (PayoutStatus.COMPLETED, PayoutStatus.FAILED),
    PayoutStatus.COMPLETED: (),
    PayoutStatus.FAILED: (),
    PayoutStatus.CANCELLED: (),
}


def minor_unit(code: str) -> int:
    """Decimal places of an active ISO 4217 currency; InvalidValue for anything else."""
    if code in _NOT_PAYABLE or not re.fullmatch(r"[A-Z]{3}", code):
        raise InvalidValue("currency", f"'{code}' is not an ISO 4217 currency code.")
    try:
        currency = moneyed.get_currency(code)
    except moneyed.CurrencyDoesNotExist:
        raise InvalidValue(
            "currency", f"'{code}' is not an ISO 4217 currency code."
        ) from None
    if not currency.countries:  # withdrawn codes keep an entry with no country left
        raise InvalidValue("currency", f"'{code}' is no longer an active currency.")
    return len(str(currency.sub_unit)) - 1


@dataclass(frozen=True)
class MoneyPolicy:
    """What this deployment accepts: an optional currency allow-list and a ceiling."""

    currencies: frozenset[str] | None = None
    max_amount: Decimal = DEFAULT_MAX_AMOUNT

    def money(self, amount: str | int | Decimal, currency: str) -> Money:
        if not isinstance(currency, str):
            raise InvalidValue("currency", "Must be a three-letter ISO 4217 code.")
        minor = minor_unit(currency)
        if self.currencies is not None and currency not in self.currencies:
            allowed = ", ".join(sorted(self.currencies))
            raise InvalidValue(
                "currency", f"'{currency}' is not accepted here (allowed: {allowed})."
            )
        value = _decimal(amount)
        if value <= 0:
            raise InvalidValue("amount", "Must be greater than zero.")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > minor:
            raise InvalidValue(
                "amount",
                f"{currency} allows at most {minor} decimal places.",
            )
        if value > self.max_amount:
            raise InvalidValue("amount", f"Must be at most {self.max_amount}.")
        return Money(value.quantize(Decimal(1).scaleb(-minor)), currency)


def _decimal(amount: str | int | Decimal) -> Decimal:
    # Floats are refused on purpose: 0.1 has no exact binary form, money must be exact.
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise InvalidValue("amount", 'Must be a decimal string such as "1500.00".')
    if isinstance(amount, str) and not re.fullmatch(
        rf"-?[0-9]{{1,{AMOUNT_DIGITS}}}(\.[0-9]{{1,20}})?", amount
    ):
        raise InvalidValue("amount", 'Must be a decimal string such as "1500.00".')
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise InvalidValue("amount", "Must be a decimal number.") from None
    if not value.is_finite():
        raise InvalidValue("amount", "Must be a finite decimal number.")
    return value


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


_CARD_DIGITS = rf"[0-9]{{{MIN_CARD_DIGITS},{MAX_CARD_DIGITS}}}"


class CardNumber:
    """A primary account number that never shows itself: str() and repr() are masked."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        if not isinstance(digits, str) or not re.fullmatch(_CARD_DIGITS, digits):
            raise InvalidValue(
                "recipient_details.number",
                f"Must be {MIN_CARD_DIGITS} to {MAX_CARD_DIGITS} digits.",
            )
        if not luhn_valid(digits):
            raise InvalidValue(
                "recipient_details.number", "Is not a valid card number (Luhn check)."
            )
        self._digits = digits

    def reveal(self) -> str:
        """The full number, for the gateway adapter and the cipher only."""
        return self._digits

    @property
    def masked(self) -> str:
        return mask_pan(self._digits)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"CardNumber({self.masked!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CardNumber) and other._digits == self._digits

    def __hash__(self) -> int:
        return hash(self._digits)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def mask_pan(digits: str) -> str:
    """PCI DSS 3.4.1: at most BIN and last four; short numbers keep only the last four."""
    head = digits[:6] if len(digits) >= 15 else ""
    return head + "*" * (len(digits) - len(head) - 4) + digits[-4:]


@dataclass(frozen=True)
class CardRecipient:
    number: CardNumber
    holder: str
    type: str = field(default="card", init=False)

    def masked(self) -> dict[str, Any]:
        return {"type": "card", "number": self.number.masked, "holder": self.holder}


@dataclass(frozen=True)
class BankAccountRecipient:
    iban: str
    holder: str
    bic: str | None = None
    type: str = field(default="bank_account", init=False)

    def masked(self) -> dict[str, Any]:
        return {
            "type": "bank_account",
            "iban": self.iban,
            "bic": self.bic,
            "holder": self.holder,
        }


Recipient = CardRecipient | BankAccountRecipient


def card_recipient(number: str, holder: str) -> CardRecipient:
    return CardRecipient(number=CardNumber(number), holder=_holder(holder))


def bank_account_recipient(
    iban: str, holder: str, bic: str | None = None
) -> BankAccountRecipient:
    try:
        parsed = IBAN(iban)
    except (SchwiftyException, ValueError, TypeError) as exc:
        raise InvalidValue("recipient_details.iban", str(exc)) from None
    bic_code = None
    if bic:
        try:
            parsed_bic = BIC(bic)
        except (SchwiftyException, ValueError, TypeError) as exc:
            raise InvalidValue("recipient_details.bic", str(exc)) from None
        if parsed_bic.country_code != parsed.country_code:
            raise InvalidValue(
                "recipient_details.bic",
                f"BIC country {parsed_bic.country_code} does not match the IBAN "
                f"country {parsed.country_code}.",
            )
        bic_code = str(parsed_bic)
    return BankAccountRecipient(iban=str(parsed), holder=_holder(holder), bic=bic_code)


def recipient_from(details: Mapping[str, Any]) -> Recipient:
    """A recipient from the API's `recipient_details`, whichever its type."""
    kind = details.get("type")
    if kind == "card":
        return card_recipient(details.get("number", ""), details.get("holder", ""))
    if kind == "bank_account":
        return bank_account_recipient(
            details.get("iban", ""), details.get("holder", ""), details.get("bic")
        )
    raise InvalidValue("recipient_details.type", f"Unknown recipient type {kind!r}.")


def _holder(holder: str) -> str:
    if not isinstance(holder, str) or not holder.strip():
        raise InvalidValue("recipient_details.holder", "Must not be blank.")
    if len(holder) > MAX_HOLDER:
        raise InvalidValue(
            "recipient_details.holder", f"At most {MAX_HOLDER} characters."
        )
    return holder.strip()


def payout_id_for(scope: str, idempotency_key: str) -> uuid.UUID:
    """The same caller and key always name the same payout: that makes creates idempotent."""
    name = f"{scope}\x1f{idempotency_key}"
    # Lone surrogates cannot be UTF-8 encoded; escape them instead of crashing.
    name = name.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")
    return uuid.uuid5(_NAMESPACE, name)
