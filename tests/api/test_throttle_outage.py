"""Creating a payout never depends on Redis: the throttle fails open when its cache does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.cache import cache

from tests.conftest import card_payout

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
