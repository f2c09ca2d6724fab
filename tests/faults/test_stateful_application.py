"""Model-based: the Payouts application under interleaved commands and racing writers.

Two application instances share one in-memory recorder, as two processes share the
event store. Rules create payouts (with and without idempotency keys), run commands
with and without If-Match, let the second instance write between the first's load
and save (the first decided on stale state), and lose the acknowledgement of a
commit. After every step the store must match a model written from the SPEC state
machine: contiguous versions, legal transitions only, nothing lost, nothing twice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
)

from ledger.errors import (
    InvalidTransition,
    LedgerError,
    RequestMismatch,
    VersionMismatch,
)
from ledger.values import payout_id_for
from tests.builders import TEST_ACTOR, WORKER, new_payout
from tests.fakes import PayoutsOn, SharedRecorder

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts


# The SPEC state machine, written independently of ledger.values.TRANSITIONS.
NEXT = {
    ("pending", "start_processing"): "processing",
    ("pending", "cancel"): "cancelled",
    ("processing", "complete"): "completed",
    ("processing", "fail"): "failed",
}
# Asked again once done: answered without a new event. Starting is never refused: a
# worker finding its payout in any other status just has nothing to do.
NO_OPS = {("completed", "complete"), ("failed", "fail"), ("cancelled", "cancel")}
EVENT = {
    "start_processing": "ProcessingStarted",
    "complete": "Completed",
    "fail": "Failed",
    "cancel": "Cancelled",
}
STATUS_OF_EVENT = {
    "Created": "pending",
    "ProcessingStarted": "processing",
    "Completed": "completed",
    "Failed": "failed",
    "Cancelled": "cancelled",
}
COMMANDS = st.sampled_from(sorted(EVENT))
IF_MATCH = st.none() | st.integers(min_value=1, max_value=4)
KEYS = st.sampled_from(["k1", "k2", "k3"])
FINGERPRINTS = st.sampled_from(["body-a", "body-b"])


@dataclass
class Model:
    """What the store must hold for one payout."""

    status: str = "pending"
    events: list[str] = field(default_factory=lambda: ["Created"])

    @property
    def version(self) -> int:
        return len(self.events)

    def expect(self, command: str, if_match: int | None) -> type[LedgerError] | None:
        """Apply a command to the model: the error it must raise, or None."""
        if command == "cancel" and if_match is not None and if_match != self.version:
            return VersionMismatch  # checked before anything about the state
        target = NEXT.get((self.status, command))
        if target is not None:
            self.status = target
            self.events.append(EVENT[command])
            return None
        if command == "start_processing" or (self.status, command) in NO_OPS:
            return None
        return InvalidTransition


def call(app: Payouts, payout_id: UUID, command: str, if_match: int | None) -> Any:
    """Run one command; a LedgerError is returned, not raised."""
    try:
        if command == "start_processing":
            return app.start_processing(payout_id, actor=WORKER)
        if command == "complete":
            return app.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
        if command == "fail":
            return app.fail(payout_id, code="declined", message="No.", actor=WORKER)
        return app.cancel(
            payout_id, reason="asked", actor=TEST_ACTOR, expected_version=if_match
        )
    except LedgerError as error:
        return error


class PayoutsMachine(RuleBasedStateMachine):
    payouts = Bundle("payouts")

    def __init__(self) -> None:
        super().__init__()
        self.recorder = SharedRecorder()
        self.apps = (PayoutsOn(self.recorder), PayoutsOn(self.recorder))
        self.models: dict[UUID, Model] = {}
        self.keys: dict[str, tuple[UUID, str]] = {}

    # Checking an outcome against the model

    def check(
        self,
        outcome: Any,
        model: Model,
        expected: type[LedgerError] | None,
        *,
        resumed: bool | None = None,
    ) -> None:
        if expected is not None:
            assert isinstance(outcome, expected), (outcome, expected)
            return
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.status == model.status
        if resumed is not None:  # a PaymentOrder
            assert outcome.resumed is resumed
        else:
            assert outcome.version == model.version

    def expect_and_check(
        self, outcome: Any, model: Model, command: str, if_match: int | None
    ) -> None:
        before = model.version
        expected = model.expect(command, if_match)
        resumed = None
        if command == "start_processing":
            resumed = model.status == "processing" and model.version == before
        self.check(outcome, model, expected, resumed=resumed)

    # Creating

    def _create(self, app: Payouts, key: str | None, fingerprint: str) -> Any:
        try:
            return app.create_payout(
                new_payout(),
                actor=TEST_ACTOR,
                idempotency_key=key,
                request_fingerprint=fingerprint if key else None,
            )
        except RequestMismatch as error:
            return error

    def _expect_create(self, outcome: Any, key: str | None, fingerprint: str) -> Any:
        """Check a create against the model; the new payout's id, if any."""
        if key is None:
            payout_id = outcome.payout.id
            assert payout_id not in self.models
            assert not outcome.replayed
            self.models[payout_id] = Model()
            return payout_id
        if key in self.keys:
            payout_id, first_fingerprint = self.keys[key]
            if fingerprint != first_fingerprint:
                assert isinstance(outcome, RequestMismatch), outcome
                return None
            assert outcome.replayed
            assert (outcome.payout.id, outcome.payout.version) == (payout_id, 1)
            return None
        assert not outcome.replayed
        assert outcome.payout.id == payout_id_for("", key)
        self.keys[key] = (outcome.payout.id, fingerprint)
        self.models[outcome.payout.id] = Model()
        return outcome.payout.id

    @rule(
        target=payouts,
        app=st.integers(0, 1),
        key=st.none() | KEYS,
        fingerprint=FINGERPRINTS,
    )
    def create(self, app: int, key: str | None, fingerprint: str) -> Any:
        outcome = self._create(self.apps[app], key, fingerprint)
        payout_id = self._expect_create(outcome, key, fingerprint)
        return multiple() if payout_id is None else payout_id

    @rule(target=payouts, key=KEYS, first=FINGERPRINTS, second=FINGERPRINTS)
    def create_twice_at_once(self, key: str, first: str, second: str) -> Any:
        """The second instance stores the same key between the first's check and save."""
        other: list[Any] = []
        self.recorder.before_next_insert.append(
            lambda: other.append(self._create(self.apps[1], key, second))
        )
        outcome = self._create(self.apps[0], key, first)
        if self.recorder.before_next_insert:  # the first never wrote: a plain replay
            self.recorder.before_next_insert.popleft()()
            created = self._expect_create(outcome, key, first)
            self._expect_create(other[0], key, second)
        else:
            created = self._expect_create(other[0], key, second)
            self._expect_create(outcome, key, first)
        return multiple() if created is None else created

    @rule(target=payouts, key=KEYS, fingerprint=FINGERPRINTS)
    def create_and_lose_the_acknowledgement(self, key: str, fingerprint: str) -> Any:
        """A keyed create commits, its answer is lost: answered as its own replay."""
        self.recorder.lose_next_ack = True
        outcome = self._create(self.apps[0], key, fingerprint)
        wrote = not self.recorder.lose_next_ack
        self.recorder.lose_next_ack = False
        assert wrote == (key not in self.keys)
        if not wrote:
            self._expect_create(outcome, key, fingerprint)
            return multiple()
        assert outcome.replayed
        assert (outcome.payout.id, outcome.payout.version) == (
            payout_id_for("", key),
            1,
        )
        self.keys[key] = (outcome.payout.id, fingerprint)
        self.models[outcome.payout.id] = Model()
        return outcome.payout.id

    # Commands

    @rule(payout_id=payouts, app=st.integers(0, 1), command=COMMANDS, if_match=IF_MATCH)
    def act(
        self, payout_id: UUID, app: int, command: str, if_match: int | None
    ) -> None:
        outcome = call(self.apps[app], payout_id, command, if_match)
        self.expect_and_check(outcome, self.models[payout_id], command, if_match)

    @rule(
        payout_id=payouts,
        first=COMMANDS,
        second=COMMANDS,
        first_if_match=IF_MATCH,
        second_if_match=IF_MATCH,
    )
    def race(
        self,
        payout_id: UUID,
        first: str,
        second: str,
        first_if_match: int | None,
        second_if_match: int | None,
    ) -> None:
        """The second instance writes after the first loaded the payout, before it saves.

        The first decided on stale state: its save conflicts, and it must decide again
        on a fresh load, never overwrite nor drop the other write.
        """
        model = self.models[payout_id]
        other: list[Any] = []
        self.recorder.before_next_insert.append(
            lambda: other.append(call(self.apps[1], payout_id, second, second_if_match))
        )
        outcome = call(self.apps[0], payout_id, first, first_if_match)
        if self.recorder.before_next_insert:
            # The first wrote nothing, so nobody interleaved: the second runs after.
            self.recorder.before_next_insert.popleft()()
            self.expect_and_check(outcome, model, first, first_if_match)
            self.expect_and_check(other[0], model, second, second_if_match)
        else:
            self.expect_and_check(other[0], model, second, second_if_match)
            self.expect_and_check(outcome, model, first, first_if_match)

    @rule(payout_id=payouts, command=COMMANDS, if_match=IF_MATCH)
    def lose_the_acknowledgement(
        self, payout_id: UUID, command: str, if_match: int | None
    ) -> None:
        """The commit happens but its answer is lost: IntegrityError, then a reload."""
        model = self.models[payout_id]
        self.recorder.lose_next_ack = True
        outcome = call(self.apps[0], payout_id, command, if_match)
        wrote = not self.recorder.lose_next_ack
        self.recorder.lose_next_ack = False
        before = model.version
        expected = model.expect(command, if_match)
        assert wrote == (model.version > before)
        if not wrote:
            self.check(
                outcome,
                model,
                expected,
                resumed=model.status == "processing"
                if command == "start_processing"
                else None,
            )
        elif command == "start_processing":
            # Its own event looks like someone else's: carried on as resumed, which
            # makes the worker ask the gateway first. Safe.
            assert (outcome.status, outcome.resumed) == ("processing", True)
        elif command == "cancel" and if_match is not None:
            # RFC 9110 13.1.1: a change already applied may be answered 2xx or 412.
            assert isinstance(outcome, VersionMismatch) or (
                outcome.status,
                outcome.version,
            ) == (model.status, model.version), outcome
        else:
            self.check(outcome, model, None)

    @rule(payout_id=payouts, command=COMMANDS)
    def cancel_with_a_version_read_before_another_write(
        self, payout_id: UUID, command: str
    ) -> None:
        """If-Match from a read on one instance, a write on the other, then the cancel."""
        model = self.models[payout_id]
        seen = self.apps[1].get_payout(payout_id).version
        self.expect_and_check(
            call(self.apps[0], payout_id, command, None), model, command, None
        )
        outcome = call(self.apps[1], payout_id, "cancel", seen)
        self.expect_and_check(outcome, model, "cancel", seen)

    # After every step

    @invariant()
    def every_payout_matches_its_model(self) -> None:
        for payout_id, model in self.models.items():
            for app in self.apps:
                history = app.history(payout_id)
                assert [r.version for r in history] == list(range(1, model.version + 1))
                assert [r.type for r in history] == model.events
                snapshot = app.get_payout(payout_id)
                assert (snapshot.status, snapshot.version) == (
                    model.status,
                    model.version,
                )

    @invariant()
    def every_transition_in_the_store_is_legal(self) -> None:
        for payout_id in self.models:
            statuses = [
                STATUS_OF_EVENT[r.type] for r in self.apps[0].history(payout_id)
            ]
            assert statuses[0] == "pending"
            for before, after in itertools.pairwise(statuses):
                assert (before, after) in {(s, t) for (s, _), t in NEXT.items()}

    @invariant()
    def every_event_is_in_the_log_once_in_order(self) -> None:
        log = self.recorder.select_notifications(start=1, limit=10_000)
        assert [n.id for n in log] == list(range(1, len(log) + 1))
        assert len(log) == sum(m.version for m in self.models.values())
        assert len({(n.originator_id, n.originator_version) for n in log}) == len(log)


PayoutsMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None
)
test_the_application_keeps_one_consistent_history_per_payout = PayoutsMachine.TestCase
