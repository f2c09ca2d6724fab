"""Input serializers check shape and format only; the Payout aggregate decides the rest."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from ledger.errors import InvalidValue
from ledger.payout import ACTOR_TYPES, EVENT_TYPES, MAX_DESCRIPTION, MAX_REASON
from ledger.values import (
    MAX_CARD_DIGITS,
    MAX_HOLDER,
    MIN_CARD_DIGITS,
    PayoutStatus,
    minor_unit,
)

STATUSES = [s.value for s in PayoutStatus]
EVENT_TYPE_NAMES = list(EVENT_TYPES.values())


class StrictSerializer(serializers.Serializer):
    """Unknown fields are a 400, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}
                )
        return super().to_internal_value(data)


class CardDetailsInput(StrictSerializer):
    type = serializers.ChoiceField(choices=["card"])
    number = serializers.RegexField(
        rf"^\d{{{MIN_CARD_DIGITS},{MAX_CARD_DIGITS}}}$",
        max_length=MAX_CARD_DIGITS,
        error_messages={
            "invalid": f"Must be {MIN_CARD_DIGITS} to {MAX_CARD_DIGITS} digits, "
            "no spaces."
        },
        help_text=f"{MIN_CARD_DIGITS}-{MAX_CARD_DIGITS} digits, Luhn-valid. "
        "Returned masked, never in full.",
    )
    holder = serializers.CharField(max_length=MAX_HOLDER)


class BankAccountDetailsInput(StrictSerializer):
    type = serializers.ChoiceField(choices=["bank_account"])
    iban = serializers.CharField(max_length=42, help_text="Validated, country-checked.")
    bic = serializers.CharField(
        max_length=11, required=False, allow_null=True, allow_blank=True
    )
    holder = serializers.CharField(max_length=MAX_HOLDER)


RECIPIENT_INPUTS: dict[str, type[StrictSerializer]] = {
    "card": CardDetailsInput,
    "bank_account": BankAccountDetailsInput,
}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="RecipientDetailsInput",
        # Keyed by `type`: the schema's discriminator maps each value to its shape.
        serializers={"card": CardDetailsInput, "bank_account": BankAccountDetailsInput},
        resource_type_field_name="type",
    )
)
class RecipientDetailsField(serializers.Field):
    default_error_messages = {
        "not_object": "Must be an object.",
        "type": "Unknown type {kind!r}; expected 'card' or 'bank_account'.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_object")
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in RECIPIENT_INPUTS:
            raise serializers.ValidationError(
                {"type": [self.error_messages["type"].format(kind=kind)]}
            )
        serializer = RECIPIENT_INPUTS[kind](data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "format": "decimal", "example": "1500.00"})
class AmountField(serializers.Field):
    """A decimal string; the ledger checks its range and the currency's minor unit."""

    default_error_messages = {"invalid": 'Must be a decimal string such as "1500.00".'}

    def to_internal_value(self, data: Any) -> str | int:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


class PayoutCreateInput(StrictSerializer):
    amount = AmountField(
        help_text="> 0, at most the currency's ISO 4217 decimals and PAYOUT_MAX_AMOUNT."
    )
    currency = serializers.RegexField(
        r"^[A-Z]{3}$",
        error_messages={
            "invalid": "Must be an ISO 4217 alpha-3 code in capitals, e.g. EUR."
        },
    )
    recipient_details = RecipientDetailsField()
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, allow_blank=True, default=""
    )


class PayoutUpdateInput(StrictSerializer):
    status = serializers.ChoiceField(
        choices=STATUSES, help_text="Only `cancelled` is a change a client may ask for."
    )
    reason = serializers.CharField(
        max_length=MAX_REASON, required=False, allow_blank=True, default=""
    )


class FailureReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class CardDetailsOutput(serializers.Serializer):
    type = serializers.CharField()
    number = serializers.CharField(help_text="Masked, e.g. 411111******1111.")
    holder = serializers.CharField()


class BankAccountDetailsOutput(serializers.Serializer):
    type = serializers.CharField()
    iban = serializers.CharField()
    bic = serializers.CharField(allow_null=True)
    holder = serializers.CharField()


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="RecipientDetails",
        serializers={
            "card": CardDetailsOutput,
            "bank_account": BankAccountDetailsOutput,
        },
        resource_type_field_name="type",
    )
)
class MaskedRecipientField(serializers.ReadOnlyField):
    pass


class PayoutOutput(serializers.Serializer):
    """A payout as the world sees it; reads a ledger snapshot or a projection row alike."""

    id = serializers.UUIDField()
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    recipient_details = MaskedRecipientField(source="recipient")
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    failure_reason = serializers.SerializerMethodField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field({"type": "string", "format": "decimal", "example": "1500.00"})
    def get_amount(self, payout: Any) -> str:
        try:
            places = minor_unit(payout.currency)
        except InvalidValue:
            places = 2
        return str(Decimal(payout.amount).quantize(Decimal(1).scaleb(-places)))

    @extend_schema_field(FailureReasonOutput(allow_null=True))
    def get_failure_reason(self, payout: Any) -> dict[str, str] | None:
        if not payout.failure_code:
            return None
        return {"code": payout.failure_code, "message": payout.failure_message or ""}


class ActorOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=ACTOR_TYPES)
    id = serializers.CharField()


class HistoryEntryOutput(serializers.Serializer):
    version = serializers.IntegerField()
    type = serializers.ChoiceField(choices=EVENT_TYPE_NAMES)
    occurred_at = serializers.DateTimeField()
    actor = ActorOutput()
    request_id = serializers.CharField(allow_blank=True)
    # A field named like Serializer.data: DRF's metaclass moves declared fields out
    # of the class, so the property is untouched at runtime; the stubs cannot say so.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="The event's own fields, card number masked."
    )
    previous_hash = serializers.CharField(
        allow_blank=True,
        help_text="`hash` of the payout's event before this one; 64 zeros for the "
        "first; empty for events written before the hash chain.",
    )
    hash = serializers.CharField(
        help_text="sha256 of this event's canonical fields (card number replaced by "
        "a salted digest); see ledger/chain.py."
    )


class FeedEntryOutput(HistoryEntryOutput):
    position = serializers.IntegerField(help_text="Global position in commit order.")
    payout_id = serializers.UUIDField()


class ProblemOutput(serializers.Serializer):
    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    # Named like Serializer.errors, which it leaves untouched at runtime (see `data`
    # of HistoryEntryOutput).
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Each bad field (dotted path, e.g. "recipient_details.number") to its messages.',
    )
    request_id = serializers.CharField(required=False)


class TransitionProblemOutput(ProblemOutput):
    current_status = serializers.ChoiceField(choices=STATUSES)
    requested_status = serializers.CharField()
    allowed_transitions = serializers.ListField(
        child=serializers.ChoiceField(choices=STATUSES)
    )


class PreconditionProblemOutput(ProblemOutput):
    current_version = serializers.IntegerField()
