"""The payment gateway port: what the workers may ask a provider, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import PaymentOrder


class GatewayError(Exception):
    """Base of provider failures."""


class TransientGatewayError(GatewayError):
    """The outcome is unknown or the provider is unavailable: retry with the same key."""


class PaymentInFlight(TransientGatewayError):
    """The provider holds the request and has not decided yet (pending, 202, a
    request with this key still in progress): ask again later, never pay elsewise."""


class PermanentGatewayError(GatewayError):
    """The provider refused the request itself (our bug or a bad configuration)."""


@dataclass(frozen=True)
class SubmitResult:
    """A definitive answer: the charge succeeded (`accepted`) or will never happen."""

    accepted: bool
    reference: str = ""
    decline_code: str = ""
    decline_message: str = ""


class PaymentGateway(Protocol):
    def pay(self, order: PaymentOrder) -> SubmitResult:
        """Pay once per payout: the idempotency key is the payout id."""
        ...

    def status(self, payout_id: UUID) -> SubmitResult | None:
        """The provider's recorded outcome for this payout's key; None if it has none
        (yet: a request may still be on its way). PaymentInFlight while pending."""
        ...

    def void(self, payout_id: UUID) -> SubmitResult | None:
        """Ask the provider never to charge this payout's key. None: it promised (no
        charge exists, none will be made); else the charge that already succeeded."""
        ...
