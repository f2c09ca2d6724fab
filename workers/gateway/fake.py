"""FakeGateway: an in-memory provider for unit tests, with scriptable outcomes."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from workers.gateway.base import GatewayError, SubmitResult

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import PaymentOrder


class FakeGateway:
    """Pays once per payout id, like a provider honouring idempotency keys.

    `script(outcome, ...)` queues what the next calls answer: a SubmitResult, or a
    GatewayError instance to raise. With nothing queued, every call is accepted.
    """

    def __init__(self) -> None:
        self.calls: list[UUID] = []
        self.charges: dict[UUID, SubmitResult] = {}
        self._script: deque[SubmitResult | GatewayError] = deque()
        self.voided: set[UUID] = set()

    @classmethod
    def from_settings(cls, config: dict[str, Any]) -> FakeGateway:
        return cls()

    def script(self, *outcomes: SubmitResult | GatewayError) -> None:
        self._script.extend(outcomes)

    def pay(self, order: PaymentOrder) -> SubmitResult:
        self.calls.append(order.payout_id)
        if order.payout_id in self.charges:
            return self.charges[order.payout_id]
        if order.payout_id in self.voided:
            return SubmitResult(accepted=False, decline_code="gateway_unavailable")
        outcome = (
            self._script.popleft()
            if self._script
            else SubmitResult(accepted=True, reference=f"ch_{order.payout_id.hex[:12]}")
        )
        if isinstance(outcome, GatewayError):
            raise outcome
        self.charges[order.payout_id] = outcome
        return outcome

    def status(self, payout_id: UUID) -> SubmitResult | None:
        return self.charges.get(payout_id)

    def void(self, payout_id: UUID) -> SubmitResult | None:
        charge = self.charges.get(payout_id)
        if charge is not None and charge.accepted:
            return charge
        self.voided.add(payout_id)
        return None

    @property
    def accepted(self) -> list[UUID]:
        return [pid for pid, result in self.charges.items() if result.accepted]
