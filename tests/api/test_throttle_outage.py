"""Outages: creating a payout never depends on Redis (the throttle fails open), and a
database outage is a retryable 503, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from eventsourcing.persistence import OperationalError

from tests.builders import card_payout

if TYPE_CHECKING:
    import pytest
    from rest_framework.test import APIClient


def test_a_create_succeeds_while_the_throttle_cache_is_down(
    staff_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: every cache read fails, as with Redis unreachable
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "get", unreachable)
    # when
    response = staff_client.post("/api/v1/payouts/", card_payout(), format="json")
    # then
    assert response.status_code == 201


def test_a_create_while_the_event_store_is_down_is_a_retryable_503(
    staff_client: APIClient, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the event store's database is restarting
    def restarting(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(ledger, "save", restarting)
    # when
    response = staff_client.post("/api/v1/payouts/", card_payout(), format="json")
    # then
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "1"
    # a commit whose acknowledgement was lost may have landed: the client is told
    # that the outcome is unknown, and how to retry safely
    detail = response.json()["detail"]
    assert "outcome of this request is unknown" in detail
    assert "same Idempotency-Key" in detail
