"""Outages: creating a payout never depends on Redis (the throttle fails open), and a
database outage is a retryable 503, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from eventsourcing.persistence import OperationalError

from tests.api.support import assert_problem, post_payout

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest
    from rest_framework.test import APIClient


def raising(error: Exception) -> Callable[..., Any]:
    """A stand-in for a call that fails with `error` whatever it is given."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def test_a_create_succeeds_while_the_throttle_cache_is_down(
    staff_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: every cache read fails, as with Redis unreachable
    monkeypatch.setattr(cache, "get", raising(ConnectionError("redis is down")))
    # when
    response = post_payout(staff_client)
    # then
    assert response.status_code == 201


def test_a_create_while_the_event_store_is_down_is_a_retryable_503(
    staff_client: APIClient, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the event store's database is restarting
    shutting_down = OperationalError("the database system is shutting down")
    monkeypatch.setattr(ledger, "save", raising(shutting_down))
    # when
    response = post_payout(staff_client)
    # then
    assert_problem(response, 503)
    assert response["Retry-After"] == "1"
    # a commit whose acknowledgement was lost may have landed: the client is told
    # that the outcome is unknown, and how to retry safely
    detail = response.json()["detail"]
    assert "outcome of this request is unknown" in detail
    assert "same Idempotency-Key" in detail
