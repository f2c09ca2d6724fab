"""API fixtures: a deterministic clock, money settings, payouts in any state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanCreateTimestamp

from ledger.apps import money_policy
from tests.builders import TEST_ACTOR

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger.application import Payouts


@dataclass
class Clock:
    """Every event gets the next tick: timestamps are distinct and known in advance."""

    now: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    step: timedelta = field(default=timedelta(seconds=1))

    def tick(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(
        CanCreateTimestamp, "create_timestamp", staticmethod(clock.tick)
    )
    return clock


@pytest.fixture
def money_settings(
    settings: Any, ledger: Payouts, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """Override LEDGER's money settings as a process started with them would see
    them."""

    def apply(**overrides: Any) -> None:
        settings.LEDGER = {**settings.LEDGER, **overrides}
        monkeypatch.setattr(ledger, "policy", money_policy())

    return apply


@pytest.fixture
def move_to(ledger: Payouts) -> Callable[[str, str], None]:
    """Take a pending payout to a status the way the workers would."""

    def run(payout_id: str, status: str) -> None:
        ident = UUID(payout_id)
        if status in ("processing", "completed", "failed"):
            ledger.start_processing(ident, actor=TEST_ACTOR)
        if status == "completed":
            ledger.complete(ident, gateway_reference="gw-1", actor=TEST_ACTOR)
        if status == "failed":
            ledger.fail(
                ident, code="card_declined", message="Declined.", actor=TEST_ACTOR
            )
        if status == "cancelled":
            ledger.cancel(ident, reason="by test", actor=TEST_ACTOR)

    return run
