"""What a request with a valid API key costs: no query for the key within
API_KEY_CACHE_SECONDS, no lockout query when nobody failed, one Redis round trip
for the rate limit, and the same answers as asking the database every time."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from api import models as api_models
from api import throttling
from api.lockout import refuse_if_locked
from api.models import ApiKey
from tests.api.support import PAYOUTS, assert_problem, bearer_client

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from ledger.application import Payouts


def fresh_address() -> str:
    # Failure markers live in Redis across tests: an address nobody has used.
    value = uuid.uuid4().int
    return f"2001:db8::{value % 65536:x}:{(value >> 16) % 65536:x}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(api_models.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def seen(
    ledger: Payouts, staff_user: User, settings: Any, clock: list[float]
) -> tuple[ApiKey, str, APIClient]:
    """A key this process has just found valid: cached for 5 s."""
    settings.API_KEY_CACHE_SECONDS = 5
    key, plain = ApiKey.issue(staff_user, "cached")
    client = bearer_client(plain, REMOTE_ADDR=fresh_address())
    assert client.get(PAYOUTS).status_code == 200
    return key, plain, client


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_is_over(
    seen: tuple[ApiKey, str, APIClient], clock: list[float]
) -> None:
    # given
    key, _, client = seen
    # when: another process revokes it (a row update, not this process's revoke())
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    # then: trusted until API_KEY_CACHE_SECONDS have passed, refused after
    clock[0] += 4.9
    assert client.get(PAYOUTS).status_code == 200
    clock[0] += 0.2
    assert_problem(client.get(PAYOUTS), 401)


def test_a_key_revoked_in_this_process_is_refused_at_once(
    seen: tuple[ApiKey, str, APIClient],
) -> None:
    key, _, client = seen
    # when
    key.revoke()
    # then
    assert_problem(client.get(PAYOUTS), 401)


def test_a_cached_key_is_refused_the_moment_it_expires(
    seen: tuple[ApiKey, str, APIClient],
) -> None:
    # given: cached while valid
    key, plain, client = seen
    # when: its expiry passes, well within the cache time
    expired = timezone.now() - timezone.timedelta(seconds=1)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=expired)
    cached = api_models.recently_valid.get(api_models.hash_secret(plain))
    assert cached is not None
    cached.expires_at = expired  # as an expiry set at issue time would stand
    # then
    assert_problem(client.get(PAYOUTS), 401)


def test_a_cached_key_costs_no_query_for_the_key(
    seen: tuple[ApiKey, str, APIClient],
) -> None:
    _, _, client = seen
    # when
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PAYOUTS).status_code == 200
    # then
    assert not [q for q in queries if "api_apikey" in q["sql"]]


@pytest.mark.redis
def test_nobody_failed_means_no_lockout_query_with_redis(ledger: Payouts) -> None:
    # given: an address and a username nobody has failed for
    request = APIClient().get(PAYOUTS).wsgi_request
    request.META["REMOTE_ADDR"] = fresh_address()
    # when
    with CaptureQueriesContext(connection) as queries:
        refuse_if_locked(request, f"pl_{uuid.uuid4().hex[:9]}")
    # then
    assert len(queries) == 0


@pytest.mark.redis
def test_a_failure_anywhere_brings_the_lockout_query_back(
    ledger: Payouts, staff_api_key: str
) -> None:
    # given
    address = fresh_address()
    assert_problem(
        bearer_client("pl_nosuchkey.x", REMOTE_ADDR=address).get(PAYOUTS), 401
    )
    request = APIClient().get(PAYOUTS).wsgi_request
    request.META["REMOTE_ADDR"] = address
    # when
    with CaptureQueriesContext(connection) as queries:
        refuse_if_locked(request, "pl_other")
    # then: asked django-axes' table
    assert any("axes_accessattempt" in q["sql"] for q in queries)


@pytest.mark.redis
def test_the_rate_limit_fails_open_when_its_redis_is_unreachable(
    ledger: Payouts, staff_api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the throttle's Redis refuses connections
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(throttling, "shared_redis", lambda: dead)
    # when
    response = bearer_client(staff_api_key, REMOTE_ADDR=fresh_address()).get(PAYOUTS)
    # then
    assert response.status_code == 200


def test_the_window_counts_every_request_and_ends(
    ledger: Payouts, staff_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: 3 requests a minute
    monkeypatch.setattr(throttling.PerUserThrottle, "THROTTLE_RATES", {"user": "3/min"})
    throttling.cache.delete(f"throttle_user_{staff_user.pk}")
    client = APIClient()
    client.force_authenticate(staff_user)
    # when
    statuses = [client.get(PAYOUTS).status_code for _ in range(5)]
    refused = client.get(PAYOUTS)
    # then
    assert statuses == [200, 200, 200, 429, 429]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # and: a new window once the old one is gone
    throttling.cache.delete(f"throttle_user_{staff_user.pk}")
    assert client.get(PAYOUTS).status_code == 200
