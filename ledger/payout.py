"""The Payout aggregate: its five events, and the commands that guard the state machine."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate, event

from ledger.chain import GENESIS, LEGACY_SEEDS, UNCHAINED, ChainLink, stream_seed
from ledger.errors import (
    InvalidTransition,
    InvalidValue,
    TamperedEvent,
    VersionMismatch,
)
from ledger.values import (
    TRANSITIONS,
    BankAccountRecipient,
    CardNumber,
    CardRecipient,
    Money,
    PayoutStatus,
    Recipient,
)

if TYPE_CHECKING:
    from uuid import UUID

MAX_DESCRIPTION = 500
MAX_REASON = 500


ACTOR_TYPES = ("user", "api_key", "worker", "system")


@dataclass(frozen=True)
class Actor:
    """Who caused an event: a user, an API key (by prefix), a worker, or the system."""

    type: str
    id: str
    request_id: str = ""

    def fields(self) -> dict[str, str]:
        """As every event records it."""
        return {
            "actor_type": self.type,
            "actor_id": self.id,
            "request_id": self.request_id,
        }


def _unchained(state: dict[str, Any]) -> None:
    """Events of v1 were written before the chain existed: readable, but unlinked."""
    state["previous_hash"] = UNCHAINED


class Step(ChainLink, Aggregate.Event):
    """What every event after Created carries: the link to the event before it (v2
    added the hash chain), and who caused it."""

    class_version = 2
    previous_hash: str
    actor_type: str
    actor_id: str
    request_id: str
    upcast_v1_v2 = staticmethod(_unchained)


class Payout(Aggregate):
    # Explicit topics keep stored events readable when modules move.
    TOPIC = "payouts:Payout"

    class Created(ChainLink, Aggregate.Created):
        TOPIC = "payouts:Payout.Created"
        # v2 added the hash chain: previous_hash, and card_salt for the card digest.
        class_version = 2
        previous_hash: str
        card_salt: str | None
        amount: Decimal
        currency: str
        recipient_type: str
        holder: str
        card_number: CardNumber | None
        iban: str | None
        bic: str | None
        description: str
        idempotency_key: str | None
        request_fingerprint: str | None
        actor_type: str
        actor_id: str
        request_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _unchained(state)
            state["card_salt"] = None

        def mutate(self, aggregate: Any) -> Any:
            # Streams from before seeding (LEGACY_SEEDS) are still readable.
            seed = stream_seed(self.originator_id)
            if self.previous_hash != seed and self.previous_hash not in LEGACY_SEEDS:
                raise TamperedEvent(
                    self.originator_id,
                    self.originator_version,
                    self.TOPIC,
                    "its chain is seeded for another payout: a Created copied from "
                    "another stream",
                )
            return super().mutate(aggregate)

    class ProcessingStarted(Step):
        TOPIC = "payouts:Payout.ProcessingStarted"

    class Completed(Step):
        TOPIC = "payouts:Payout.Completed"
        gateway_reference: str

    class Failed(Step):
        TOPIC = "payouts:Payout.Failed"
        code: str
        message: str

    class Cancelled(Step):
        TOPIC = "payouts:Payout.Cancelled"
        reason: str

    @classmethod
    def open(
        cls,
        *,
        payout_id: UUID,
        money: Money,
        recipient: Recipient,
        description: str,
        actor: Actor,
        idempotency_key: str | None = None,
        request_fingerprint: str | None = None,
    ) -> Payout:
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidValue(
                "description", f"At most {MAX_DESCRIPTION} characters of text."
            )
        card = recipient.number if isinstance(recipient, CardRecipient) else None
        bank = recipient if isinstance(recipient, BankAccountRecipient) else None
        # _create is the library's documented way to pass a chosen id to a Created event.
        return cls._create(
            cls.Created,
            id=payout_id,
            previous_hash=stream_seed(payout_id),
            card_salt=secrets.token_hex(16) if card is not None else None,
            amount=money.amount,
            currency=money.currency,
            recipient_type=recipient.type,
            holder=recipient.holder,
            card_number=card,
            iban=bank.iban if bank else None,
            bic=bank.bic if bank else None,
            description=description,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
            **actor.fields(),
        )

    @event(Created)
    def __init__(
        self,
        amount: Decimal,
        currency: str,
        recipient_type: str,
        holder: str,
        card_number: CardNumber | None,
        iban: str | None,
        bic: str | None,
        description: str,
        idempotency_key: str | None,
        request_fingerprint: str | None,
        actor_type: str,
        actor_id: str,
        request_id: str,
    ) -> None:
        self.money = Money(amount, currency)
        self.recipient: Recipient = (
            CardRecipient(number=card_number, holder=holder)
            if card_number is not None
            else BankAccountRecipient(iban=iban or "", holder=holder, bic=bic)
        )
        self.description = description
        self.idempotency_key = idempotency_key
        self.request_fingerprint = request_fingerprint
        self.status = PayoutStatus.PENDING
        self.failure_code: str | None = None
        self.failure_message: str | None = None
        self.gateway_reference: str | None = None
        self.chain_head = GENESIS  # set to the Created event's hash once it applies

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # Every event after Created links to the hash of the one before it.
        super().trigger_event(event_class, previous_hash=self.chain_head, **kwargs)

    # Commands: each checks the state machine, then records exactly one event. Asked
    # again (the payout is already where the command leads: a redelivered task, a
    # retried request), a command records nothing and returns False.

    def start_processing(self, *, actor: Actor) -> bool:
        if self.status == PayoutStatus.PROCESSING:
            return False
        self._require(PayoutStatus.PROCESSING)
        self._start_processing(**actor.fields())
        return True

    def complete(self, *, gateway_reference: str, actor: Actor) -> bool:
        if self.status == PayoutStatus.COMPLETED:
            return False
        self._require(PayoutStatus.COMPLETED)
        self._complete(gateway_reference=gateway_reference, **actor.fields())
        return True

    def fail(self, *, code: str, message: str, actor: Actor) -> bool:
        if self.status == PayoutStatus.FAILED:
            return False
        self._require(PayoutStatus.FAILED)
        self._fail(code=code, message=message, **actor.fields())
        return True

    def cancel(
        self, *, reason: str, actor: Actor, expected_version: int | None = None
    ) -> bool:
        # The precondition comes first: a client that read another version is told
        # so, whatever the payout's status is now.
        self.check_version(expected_version)
        if self.status == PayoutStatus.CANCELLED:
            return False
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise InvalidValue("reason", f"At most {MAX_REASON} characters of text.")
        self._require(PayoutStatus.CANCELLED)
        self._cancel(reason=reason, **actor.fields())
        return True

    def check_version(self, expected: int | None) -> None:
        """An If-Match precondition: the caller acts on the version it last read."""
        if expected is not None and self.version != expected:
            raise VersionMismatch(self.id, expected, self.version)

    def allowed_transitions(self) -> tuple[PayoutStatus, ...]:
        return TRANSITIONS[self.status]

    def _require(self, target: PayoutStatus) -> None:
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(
                self.id,
                self.status.value,
                target.value,
                [s.value for s in TRANSITIONS[self.status]],
            )

    # Mutators: they run on every replay, so they hold no rules.

    @event(ProcessingStarted)
    def _start_processing(
        self, actor_type: str, actor_id: str, request_id: str
    ) -> None:
        self.status = PayoutStatus.PROCESSING

    @event(Completed)
    def _complete(
        self, gateway_reference: str, actor_type: str, actor_id: str, request_id: str
    ) -> None:
        self.status = PayoutStatus.COMPLETED
        self.gateway_reference = gateway_reference

    @event(Failed)
    def _fail(
        self, code: str, message: str, actor_type: str, actor_id: str, request_id: str
    ) -> None:
        self.status = PayoutStatus.FAILED
        self.failure_code = code
        self.failure_message = message

    @event(Cancelled)
    def _cancel(
        self, reason: str, actor_type: str, actor_id: str, request_id: str
    ) -> None:
        self.status = PayoutStatus.CANCELLED


# The status each event leaves a payout in (what the mutators set), for readers of the
# log that fold events without building aggregates: projections and audits.
STATUS_AFTER: dict[type[Any], PayoutStatus] = {
    Payout.Created: PayoutStatus.PENDING,
    Payout.ProcessingStarted: PayoutStatus.PROCESSING,
    Payout.Completed: PayoutStatus.COMPLETED,
    Payout.Failed: PayoutStatus.FAILED,
    Payout.Cancelled: PayoutStatus.CANCELLED,
}

EVENT_TYPES: dict[type[Any], str] = {
    Payout.Created: "Created",
    Payout.ProcessingStarted: "ProcessingStarted",
    Payout.Completed: "Completed",
    Payout.Failed: "Failed",
    Payout.Cancelled: "Cancelled",
}
