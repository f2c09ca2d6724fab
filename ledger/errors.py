"""The one error tree of the ledger: every rule it enforces fails with one of these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidValue(LedgerError):
    """A value object refused its input; `field` names the input that was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidRequest(LedgerError):
    """Several inputs were refused at once; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class PayoutNotFound(LedgerError):
    """No payout with this id (or not at the requested version or instant)."""

    def __init__(self, payout_id: UUID) -> None:
        super().__init__(f"payout {payout_id} not found")
        self.payout_id = payout_id


class InvalidTransition(LedgerError):
    """The state machine has no such transition from the payout's current status."""

    def __init__(
        self,
        payout_id: UUID,
        current_status: str,
        target_status: str,
        allowed: Sequence[str],
        reason: str = "",
    ) -> None:
        super().__init__(
            reason
            or f"payout {payout_id} is {current_status}; cannot become {target_status}"
        )
        self.payout_id = payout_id
        self.current_status = current_status
        self.target_status = target_status
        # What the payout could become instead, for the client's error message.
        self.allowed_transitions = list(allowed)


class VersionMismatch(LedgerError):
    """The caller decided on a version of the payout that is no longer current."""

    def __init__(self, payout_id: UUID, expected: int, actual: int) -> None:
        super().__init__(f"payout {payout_id} is at version {actual}, not {expected}")
        self.payout_id = payout_id
        self.expected = expected
        self.actual = actual


class RequestMismatch(LedgerError):
    """An idempotency key was reused with a different request."""

    def __init__(self, payout_id: UUID) -> None:
        super().__init__(
            f"idempotency key already used for payout {payout_id} with another request"
        )
        self.payout_id = payout_id


class ConcurrencyExhausted(LedgerError):
    """Too many concurrent writers kept winning the race for this payout."""

    def __init__(self, payout_id: UUID) -> None:
        super().__init__(f"payout {payout_id} is contended; try again")
        self.payout_id = payout_id


class TamperedEvent(LedgerError, ValueError):
    """A stored event is not what the ledger wrote in that place: it does not
    authenticate under its stream id, version and topic, or its stream's chain is
    seeded for another payout. It is never applied, and its payout never paid."""

    def __init__(
        self, payout_id: UUID | str, version: int, topic: str, reason: str
    ) -> None:
        super().__init__(f"payout {payout_id} event v{version} ({topic}): {reason}")
        self.payout_id = payout_id
        self.version = version
        self.topic = topic
        self.reason = reason

    def __reduce__(self) -> tuple[type[TamperedEvent], tuple[Any, ...]]:
        # Pickled whole (Celery does, to hand it to on_failure), not as a base class.
        return type(self), (self.payout_id, self.version, self.topic, self.reason)


class UnsafeConfiguration(LedgerError):
    """The ledger application was given an option that breaks one of its guarantees."""
