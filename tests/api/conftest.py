"""HTTP-level helpers: problem documents, a deterministic clock, payouts in any state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanCreateTimestamp

from ledger.apps import money_policy
from tests.conftest import TEST_ACTOR, card_payout

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpResponse
    from rest_framework.test import APIClient

    from ledger.application import Payouts

PAYOUTS = "/api/v1/payouts/"
EVENTS = "/api/v1/events/"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "errors"}


def detail_url(payout_id: str | UUID) -> str:
    return f"{PAYOUTS}{payout_id}/"


def history_url(payout_id: str | UUID) -> str:
    return f"{PAYOUTS}{payout_id}/history/"


def assert_problem(response: HttpResponse, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; returns it."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status
    assert isinstance(body["errors"], dict)
    return body


def post_payout(client: APIClient, body: Any = None, **headers: str) -> HttpResponse:
    return client.post(
        PAYOUTS, card_payout() if body is None else body, format="json", **headers
    )


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
    """Override PAYOUT_* settings as a process started with them would see them."""

    def apply(**overrides: Any) -> None:
        for name, value in overrides.items():
            setattr(settings, name, value)
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
