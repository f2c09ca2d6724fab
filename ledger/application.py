"""The ledger application: one short method per use case, primitives in and out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from eventsourcing.application import (
    AggregateNotFoundError,
    project_aggregate,
)
from eventsourcing.persistence import IntegrityError

from ledger import errors
from ledger.payout import Actor, Payout
from ledger.recent import RecentlySaved
from ledger.records import EventRecord, PayoutSnapshot, record, snapshot
from ledger.storage import PayoutStore
from ledger.values import (
    MoneyPolicy,
    PayoutStatus,
    Recipient,
    payout_id_for,
    recipient_from,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from datetime import datetime
    from decimal import Decimal
    from typing import Concatenate


P = ParamSpec("P")
T = TypeVar("T")

# A payout has a handful of events, so a few reloads always settle a race.
_ATTEMPTS = 8


@dataclass(frozen=True)
class NewPayout:
    amount: str | int | Decimal
    currency: str
    recipient: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class PaymentOrder:
    """What a gateway needs to pay: the one place the full recipient leaves the ledger."""

    payout_id: uuid.UUID
    amount: Decimal
    currency: str
    recipient: Recipient
    status: str
    # Already processing before this call: an earlier attempt may have been charged.
    resumed: bool = False


@dataclass(frozen=True)
class CreateOutcome:
    payout: PayoutSnapshot
    replayed: bool


class Payouts(PayoutStore):
    name = "payouts"

    def __init__(
        self, env: Mapping[str, str] | None = None, policy: MoneyPolicy | None = None
    ) -> None:
        super().__init__(env)
        self.policy = policy or MoneyPolicy()
        self._recent = RecentlySaved()

    # Commands

    def create_payout(
        self,
        request: NewPayout,
        *,
        actor: Actor,
        scope: str = "",
        idempotency_key: str | None = None,
        request_fingerprint: str | None = None,
        legacy_fingerprint: str | None = None,
    ) -> CreateOutcome:
        """Store a new payout, or replay the one stored under the same key.

        A replay needs the stored fingerprint to equal `request_fingerprint`, or, for
        a payout stored under an older fingerprint scheme, `legacy_fingerprint` (the
        same request fingerprinted the old way): the schemes' values never coincide.
        """
        payout_id = (
            payout_id_for(scope, idempotency_key) if idempotency_key else uuid.uuid4()
        )
        if idempotency_key and payout_id in self.repository:
            return self._replay(payout_id, request_fingerprint, legacy_fingerprint)
        payout = Payout.open(
            payout_id=payout_id,
            **_validated(self.policy, request),
            actor=actor,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        try:
            self.save(payout)
            self._recent.keep(payout)
        except IntegrityError:
            if not idempotency_key:
                # A fresh uuid4 cannot collide: the library retried a commit whose
                # acknowledgement was lost, and the stream is this very payout.
                return CreateOutcome(
                    snapshot(self._load(payout_id, version=1)), replayed=False
                )
            # A concurrent request with the same key won; answer as its replay.
            return self._replay(payout_id, request_fingerprint, legacy_fingerprint)
        return CreateOutcome(snapshot(payout), replayed=False)

    def start_processing(self, payout_id: uuid.UUID, *, actor: Actor) -> PaymentOrder:
        """Move a pending payout to processing; a payout already there is carried on.

        A redelivered task finds its payout in `processing` and must go on with the
        same gateway idempotency key rather than skip it: skipping strands payouts.
        """
        try:
            payout, started = self._decide(
                payout_id, Payout.start_processing, actor=actor
            )
        except errors.InvalidTransition:
            # Settled or cancelled first: nothing to pay, and the order says why.
            payout, started = self._load(payout_id), False
        return PaymentOrder(
            payout_id=payout.id,
            amount=payout.money.amount,
            currency=payout.money.currency,
            recipient=payout.recipient,
            status=payout.status.value,
            resumed=not started and payout.status == PayoutStatus.PROCESSING,
        )

    def complete(
        self, payout_id: uuid.UUID, *, gateway_reference: str, actor: Actor
    ) -> PayoutSnapshot:
        payout, _ = self._decide(
            payout_id, Payout.complete, gateway_reference=gateway_reference, actor=actor
        )
        return snapshot(payout)

    def fail(
        self, payout_id: uuid.UUID, *, code: str, message: str, actor: Actor
    ) -> PayoutSnapshot:
        payout, _ = self._decide(
            payout_id, Payout.fail, code=code, message=message, actor=actor
        )
        return snapshot(payout)

    def cancel(
        self,
        payout_id: uuid.UUID,
        *,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> PayoutSnapshot:
        payout, _ = self._decide(
            payout_id,
            Payout.cancel,
            reason=reason,
            actor=actor,
            expected_version=expected_version,
        )
        return snapshot(payout)

    def request_status(
        self,
        payout_id: uuid.UUID,
        status: str,
        *,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> PayoutSnapshot:
        """A client asks for a status. Cancelling is the only change a client may ask
        for; the others are the workers' to make, so asking is an invalid transition."""
        if status == PayoutStatus.CANCELLED:
            return self.cancel(
                payout_id, reason=reason, actor=actor, expected_version=expected_version
            )
        payout = self._load(payout_id)
        payout.check_version(expected_version)
        raise errors.InvalidTransition(
            payout_id,
            payout.status.value,
            status,
            [s.value for s in payout.allowed_transitions()],
            f"A payout cannot be moved to {status} by a client; only cancelling a "
            "pending payout is.",
        )

    # Queries

    def get_payout(
        self,
        payout_id: uuid.UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> PayoutSnapshot:
        if as_of is not None:
            return snapshot(self._replay_as_of(payout_id, as_of, version))
        if version is not None and version < 1:
            raise errors.PayoutNotFound(payout_id)
        payout = self._load(payout_id, version=version)
        if version is not None and payout.version != version:
            raise errors.PayoutNotFound(payout_id)
        return snapshot(payout)

    def history(self, payout_id: uuid.UUID) -> list[EventRecord]:
        records = [record(e, None) for e in self.events.get(payout_id)]
        if not records:
            raise errors.PayoutNotFound(payout_id)
        return records

    def feed(self, *, after: int, limit: int) -> list[EventRecord]:
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [record(self.mapper.to_domain_event(n), n.id) for n in notifications]

    def iter_feed(self, *, after: int, batch: int = 500) -> Iterator[EventRecord]:
        """Every event after `after` committed before the first read, `batch` at a time.

        Memory stays at one batch however long the feed; events committed while the
        caller iterates are left for its next call (the end is fixed at the start).
        """
        stop = self.recorder.max_notification_id()
        while stop is not None and after < stop:
            notifications = self.recorder.select_notifications(
                start=after, limit=batch, stop=stop, inclusive_of_start=False
            )
            if not notifications:
                return
            for n in notifications:
                yield record(self.mapper.to_domain_event(n), n.id)
            after = notifications[-1].id

    # Internals

    def _load(self, payout_id: uuid.UUID, version: int | None = None) -> Payout:
        try:
            payout: Payout = self.repository.get(payout_id, version=version)
        except AggregateNotFoundError:
            raise errors.PayoutNotFound(payout_id) from None
        return payout

    def _replay_as_of(
        self, payout_id: uuid.UUID, as_of: datetime, version: int | None
    ) -> Payout:
        """The payout at its last version recorded at or before `as_of` (or at
        `version`, if that existed by then): one read of the stream."""
        events: list[Payout.Event] = list(self.events.get(payout_id))  # type: ignore[arg-type]
        existing = [i for i, e in enumerate(events) if e.timestamp <= as_of]
        if not existing:
            raise errors.PayoutNotFound(payout_id)  # not yet
        last = existing[-1]
        if version is not None:
            if not 1 <= version <= events[last].originator_version:
                raise errors.PayoutNotFound(payout_id)  # not that version, or not yet
            last = next(
                i for i, e in enumerate(events) if e.originator_version == version
            )
        payout: Payout | None = project_aggregate(None, events[: last + 1])
        if payout is None:
            raise errors.PayoutNotFound(payout_id)
        return payout

    def _decide(
        self,
        payout_id: uuid.UUID,
        command: Callable[Concatenate[Payout, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> tuple[Payout, T]:
        """Load → command → save, running the command again on a fresh load when a
        writer raced us; returns the payout and what the command returned.

        IntegrityError can also follow a commit whose acknowledgement was lost and
        retried by the library, so it always means "reload and check", never "failed".
        """
        for attempt in range(_ATTEMPTS):
            # This process's copy of what it saved last spares the read; it may be
            # stale, which only a write can prove wrong (the version constraint).
            # A command that records nothing, or refuses, runs again on a load.
            recent = self._recent.take(payout_id) if attempt == 0 else None
            payout = recent or self._load(payout_id)
            try:
                outcome = command(payout, *args, **kwargs)
            except Exception:
                if recent is None:
                    raise
                continue
            if not payout.pending_events:
                if recent is not None:
                    continue
                return payout, outcome
            try:
                self.save(payout)
            except IntegrityError:
                continue
            self._recent.keep(payout)
            return payout, outcome
        raise errors.ConcurrencyExhausted(payout_id)

    def _replay(
        self,
        payout_id: uuid.UUID,
        request_fingerprint: str | None,
        legacy_fingerprint: str | None = None,
    ) -> CreateOutcome:
        original = self._load(payout_id, version=1)
        stored = original.request_fingerprint
        if stored != request_fingerprint and (
            legacy_fingerprint is None or stored != legacy_fingerprint
        ):
            raise errors.RequestMismatch(payout_id)
        return CreateOutcome(snapshot(original), replayed=True)


def _validated(policy: MoneyPolicy, request: NewPayout) -> dict[str, Any]:
    refused: dict[str, list[str]] = {}
    values: dict[str, Any] = {"description": request.description or ""}

    def attempt(key: str, build: Callable[[], Any]) -> None:
        try:
            values[key] = build()
        except errors.InvalidValue as exc:
            refused.setdefault(exc.field, []).append(exc.message)

    attempt("money", lambda: policy.money(request.amount, request.currency))
    attempt("recipient", lambda: recipient_from(request.recipient))
    if refused:
        raise errors.InvalidRequest(refused)
    return values
