"""The Payout aggregate: given a history, when a command runs, then events or an error."""

from __future__ import annotations

import functools
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from hypothesis.strategies import sampled_from

from ledger.errors import InvalidTransition, InvalidValue, VersionMismatch
from ledger.payout import Payout
from ledger.values import (
    MoneyPolicy,
    PayoutStatus,
    bank_account_recipient,
    card_recipient,
)
from tests.builders import TEST_ACTOR, WORKER

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

VISA = "4242424242424242"

# The SPEC state machine, written independently of ledger.values.TRANSITIONS.
SPEC: dict[str, dict[str, str]] = {
    "pending": {"start_processing": "processing", "cancel": "cancelled"},
    "processing": {"complete": "completed", "fail": "failed"},
    "completed": {},
    "failed": {},
    "cancelled": {},
}
COMMANDS: dict[str, Callable[[Payout], Any]] = {
    "start_processing": lambda p: p.start_processing(actor=WORKER),
    "complete": lambda p: p.complete(gateway_reference="ch_1", actor=WORKER),
    "fail": lambda p: p.fail(code="card_declined", message="Declined.", actor=WORKER),
    "cancel": lambda p: p.cancel(reason="customer asked", actor=TEST_ACTOR),
}
EVENT_OF = {
    "start_processing": Payout.ProcessingStarted,
    "complete": Payout.Completed,
    "fail": Payout.Failed,
    "cancel": Payout.Cancelled,
}
# The commands that lead from a new payout to each status.
PATHS = {
    "pending": [],
    "processing": ["start_processing"],
    "completed": ["start_processing", "complete"],
    "failed": ["start_processing", "fail"],
    "cancelled": ["cancel"],
}


def new_payout(**overrides: Any) -> Payout:
    kwargs: dict[str, Any] = {
        "payout_id": uuid.uuid4(),
        "money": MoneyPolicy().money("1500.00", "EUR"),
        "recipient": card_recipient(VISA, "Ada Lovelace"),
        "description": "Invoice 118",
        "actor": TEST_ACTOR,
    }
    kwargs.update(overrides)
    return Payout.open(**kwargs)


def payout_in(status: str) -> Payout:
    """Given: a payout whose history leads to `status`, its events already collected."""
    payout = new_payout()
    for command in PATHS[status]:
        COMMANDS[command](payout)
    payout.collect_events()
    return payout


def replay(events: Sequence[Any]) -> Payout:
    return functools.reduce(lambda aggregate, e: e.mutate(aggregate), events, None)


# Where each command leads; a command run on a payout already there is asked again.
TARGET = {c: t for moves in SPEC.values() for c, t in moves.items()}
LEGAL = [(s, c) for s, moves in SPEC.items() for c in moves]
REPEATS = [(t, c) for c, t in TARGET.items()]
ILLEGAL = [
    (s, c) for s in SPEC for c in COMMANDS if c not in SPEC[s] and s != TARGET[c]
]


# Created


def test_a_new_payout_is_pending_at_version_one() -> None:
    # when
    payout = new_payout()
    # then
    events = payout.collect_events()
    assert [type(e) for e in events] == [Payout.Created]
    assert payout.status == PayoutStatus.PENDING
    assert payout.version == 1


def test_the_created_event_carries_the_request_and_who_made_it() -> None:
    # given
    payout_id = uuid.uuid4()
    # when
    payout = new_payout(
        payout_id=payout_id, idempotency_key="k-1", request_fingerprint="fp"
    )
    # then
    (created,) = payout.collect_events()
    assert created.originator_id == payout_id
    assert created.amount == Decimal("1500.00")
    assert created.currency == "EUR"
    assert created.card_number.reveal() == VISA
    assert (created.actor_type, created.actor_id, created.request_id) == (
        "user",
        "tester",
        "req-1",
    )
    assert (created.idempotency_key, created.request_fingerprint) == ("k-1", "fp")


def test_the_created_event_never_shows_the_full_card_number() -> None:
    # given
    (created,) = new_payout().collect_events()
    # when
    shown = repr(created)
    # then
    assert VISA not in shown


def test_a_bank_account_payout_keeps_its_iban_and_bic() -> None:
    # given
    recipient = bank_account_recipient("DE89370400440532013000", "Grace", "COBADEFFXXX")
    # when
    payout = new_payout(recipient=recipient)
    # then
    assert payout.recipient == recipient
    assert payout.collect_events()[0].card_number is None


def test_a_description_over_500_characters_is_refused() -> None:
    # when
    with pytest.raises(InvalidValue) as refused:
        new_payout(description="x" * 501)
    # then
    assert refused.value.field == "description"


# Transitions


@pytest.mark.parametrize(
    ("status", "command", "recorded"),
    [(s, c, [EVENT_OF[c]]) for s, c in LEGAL] + [(s, c, []) for s, c in REPEATS],
)
def test_a_command_records_one_event_or_none_when_asked_again(
    status: str, command: str, recorded: list[type[Any]]
) -> None:
    # given
    payout = payout_in(status)
    version = payout.version
    # when
    changed = COMMANDS[command](payout)
    # then
    events = payout.collect_events()
    assert [type(e) for e in events] == recorded
    assert [e.originator_version for e in events] == [version + 1] * len(recorded)
    assert changed is bool(recorded)
    assert payout.status == TARGET[command]


@pytest.mark.parametrize(("status", "command"), ILLEGAL)
def test_an_illegal_transition_is_rejected_and_records_nothing(
    status: str, command: str
) -> None:
    # given
    payout = payout_in(status)
    version = payout.version
    # when
    with pytest.raises(InvalidTransition) as rejected:
        COMMANDS[command](payout)
    # then
    assert payout.collect_events() == []
    assert payout.status == status
    assert payout.version == version
    assert rejected.value.current_status == status
    assert rejected.value.payout_id == payout.id


def test_completing_keeps_the_gateway_reference() -> None:
    # given
    payout = payout_in("processing")
    # when
    payout.complete(gateway_reference="ch_abc", actor=WORKER)
    # then
    assert payout.gateway_reference == "ch_abc"


def test_failing_keeps_the_failure_code_and_message() -> None:
    # given
    payout = payout_in("processing")
    # when
    payout.fail(code="insufficient_funds", message="No funds.", actor=WORKER)
    # then
    assert (payout.failure_code, payout.failure_message) == (
        "insufficient_funds",
        "No funds.",
    )


def test_cancelling_keeps_the_reason() -> None:
    # given
    payout = payout_in("pending")
    # when
    payout.cancel(reason="customer asked", actor=TEST_ACTOR)
    # then
    assert payout.collect_events()[0].reason == "customer asked"


@pytest.mark.parametrize("status", ["pending", "cancelled", "processing"])
def test_cancelling_at_another_version_is_refused_before_anything_else(
    status: str,
) -> None:
    # given
    payout = payout_in(status)
    # when
    with pytest.raises(VersionMismatch) as refused:
        payout.cancel(reason="", actor=TEST_ACTOR, expected_version=payout.version - 1)
    # then
    assert (refused.value.expected, refused.value.actual) == (
        payout.version - 1,
        payout.version,
    )
    assert payout.collect_events() == []


def test_a_cancel_reason_over_500_characters_is_refused() -> None:
    # given
    payout = payout_in("pending")
    # when
    with pytest.raises(InvalidValue) as refused:
        payout.cancel(reason="x" * 501, actor=TEST_ACTOR)
    # then
    assert refused.value.field == "reason"
    assert payout.collect_events() == []


@pytest.mark.parametrize("status", list(SPEC))
def test_allowed_transitions_follow_the_spec(status: str) -> None:
    # given
    payout = payout_in(status)
    # when
    allowed = payout.allowed_transitions()
    # then
    assert sorted(allowed) == sorted(SPEC[status].values())


def test_a_replayed_history_rebuilds_the_same_payout() -> None:
    # given
    payout = new_payout()
    payout.start_processing(actor=WORKER)
    payout.fail(code="card_declined", message="Declined.", actor=WORKER)
    # when
    events = payout.collect_events()
    # then
    assert replay(events) == payout


# Model-based: the aggregate against the SPEC state machine


class PayoutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.payout = new_payout()
        self.events = list(self.payout.collect_events())
        self.model = "pending"

    @rule(command=sampled_from(list(COMMANDS)))
    def run(self, command: str) -> None:
        target = SPEC[self.model].get(command)
        if target is not None:
            assert COMMANDS[command](self.payout) is True
            self.model = target
        elif self.model == TARGET[command]:
            assert COMMANDS[command](self.payout) is False
        else:
            with pytest.raises(InvalidTransition):
                COMMANDS[command](self.payout)
        new_events = self.payout.collect_events()
        assert [type(e) for e in new_events] == (
            [EVENT_OF[command]] if target is not None else []
        )
        self.events.extend(new_events)

    @invariant()
    def status_matches_the_model(self) -> None:
        assert self.payout.status == self.model

    @invariant()
    def versions_are_contiguous_from_one(self) -> None:
        versions = [e.originator_version for e in self.events]
        assert versions == list(range(1, len(self.events) + 1))
        assert self.payout.version == len(self.events)

    @invariant()
    def replaying_the_events_gives_the_live_payout(self) -> None:
        assert replay(self.events) == self.payout


PayoutMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=12, deadline=None
)
test_the_payout_follows_the_spec_state_machine = PayoutMachine.TestCase
