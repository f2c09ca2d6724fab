"""Authentication (Basic, Bearer API key, session) and roles (staff, auditor, others)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from api.models import ApiKey
from api.throttling import PerUserThrottle
from tests.api.support import (
    EVENTS,
    PAYOUTS,
    SOME_ID,
    assert_problem,
    basic,
    bearer_client,
    detail_url,
    history_url,
    post_payout,
)
from tests.builders import card_payout

# Every operation of the API: (method, path, body).
OPERATIONS = [
    ("get", PAYOUTS, None),
    ("post", PAYOUTS, card_payout()),
    ("get", detail_url(SOME_ID), None),
    ("patch", detail_url(SOME_ID), {"status": "cancelled"}),
    ("delete", detail_url(SOME_ID), None),
    ("get", history_url(SOME_ID), None),
    ("get", EVENTS, None),
]
OPERATION_IDS = [f"{m.upper()} {p}" for m, p, _ in OPERATIONS]


def call(client: APIClient, method: str, path: str, body: object):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.fixture
def plain_client(plain_user, ledger) -> APIClient:
    client = APIClient()
    client.force_authenticate(plain_user)
    return client


@pytest.fixture
def payout_id(staff_client) -> str:
    return post_payout(staff_client).json()["id"]


# 401


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS, ids=OPERATION_IDS)
def test_no_credentials_is_a_401_with_a_challenge(ledger, method, path, body) -> None:
    # when
    response = call(APIClient(), method, path, body)
    # then
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer pl_000000000.not-a-real-key",
        "Bearer",
        "Bearer two parts",
        "Basic bm90LWJhc2U2NA==",
        "Basic !!!",
    ],
)
def test_bad_credentials_are_a_401(ledger, staff_user, authorization) -> None:
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    # when
    response = client.get(PAYOUTS)
    # then
    assert_problem(response, 401)


def test_a_wrong_basic_password_is_a_401(ledger, staff_user) -> None:
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("staff", "wrong"))
    # when
    response = client.get(PAYOUTS)
    # then
    assert_problem(response, 401)


def test_a_revoked_api_key_is_a_401(ledger, staff_user) -> None:
    # given
    key, plain = ApiKey.issue(staff_user, "to revoke")
    key.revoke()
    # when
    response = bearer_client(plain).get(PAYOUTS)
    # then
    assert_problem(response, 401)


def test_the_api_key_of_a_deactivated_user_is_a_401(ledger, staff_user) -> None:
    # given
    _, plain = ApiKey.issue(staff_user, "orphan")
    staff_user.is_active = False
    staff_user.save()
    # when
    response = bearer_client(plain).get(PAYOUTS)
    # then
    assert_problem(response, 401)


# Ways in


def test_basic_auth_lets_staff_in(ledger, staff_user) -> None:
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("staff", "staff-pass"))
    # when
    response = client.get(PAYOUTS)
    # then
    assert response.status_code == 200


def test_an_api_key_lets_staff_read(ledger, staff_api_key) -> None:
    # when
    response = bearer_client(staff_api_key).get(PAYOUTS)
    # then
    assert response.status_code == 200


def test_an_api_key_lets_staff_create(ledger, staff_api_key) -> None:
    # when
    response = post_payout(bearer_client(staff_api_key))
    # then
    assert response.status_code == 201


def test_a_session_lets_staff_read(ledger, staff_user) -> None:
    # given
    client = APIClient()
    client.login(username="staff", password="staff-pass")
    # when
    response = client.get(PAYOUTS)
    # then
    assert response.status_code == 200


def test_a_session_write_without_a_csrf_token_is_a_403(ledger, staff_user) -> None:
    # given
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="staff", password="staff-pass")
    # when
    response = post_payout(client)
    # then
    assert_problem(response, 403)


def test_a_session_write_with_a_csrf_token_is_accepted(ledger, staff_user) -> None:
    # given
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="staff", password="staff-pass")
    token = "a" * 32
    client.cookies["csrftoken"] = token
    # when
    response = post_payout(client, HTTP_X_CSRFTOKEN=token)
    # then
    assert response.status_code == 201


# Roles


@pytest.mark.parametrize(
    "path",
    [PAYOUTS, "detail", "history", EVENTS],
    ids=["list", "detail", "history", "events"],
)
def test_an_auditor_can_read_everything(auditor_client, payout_id, path) -> None:
    # given
    url = {"detail": detail_url(payout_id), "history": history_url(payout_id)}.get(
        path, path
    )
    # when
    response = auditor_client.get(url)
    # then
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "body"),
    [("post", card_payout()), ("patch", {"status": "cancelled"}), ("delete", None)],
    ids=["create", "cancel with patch", "cancel with delete"],
)
def test_an_auditor_can_neither_create_nor_cancel(
    auditor_client, staff_client, payout_id, method, body
) -> None:
    # given
    path = PAYOUTS if method == "post" else detail_url(payout_id)
    # when
    response = call(auditor_client, method, path, body)
    # then
    assert_problem(response, 403)
    assert staff_client.get(detail_url(payout_id)).json()["version"] == 1
    assert len(staff_client.get(EVENTS).json()) == 1


def test_an_auditor_reading_through_basic_auth_is_let_in(ledger, auditor_user) -> None:
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("auditor", "auditor-pass"))
    # when
    response = client.get(EVENTS)
    # then
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS, ids=OPERATION_IDS)
def test_a_user_without_a_role_is_forbidden_everywhere(
    plain_client, method, path, body
) -> None:
    # when
    response = call(plain_client, method, path, body)
    # then
    assert_problem(response, 403)


def test_the_api_key_of_a_user_without_a_role_is_forbidden(plain_user, ledger) -> None:
    # given
    _, plain = ApiKey.issue(plain_user, "no role")
    # when
    response = bearer_client(plain).get(PAYOUTS)
    # then
    assert_problem(response, 403)


# Throttling


@pytest.fixture
def two_per_minute(monkeypatch, staff_user) -> None:
    """API_THROTTLE_RATE=2/min, with an empty history for the staff user."""
    monkeypatch.setattr(PerUserThrottle, "THROTTLE_RATES", {"user": "2/min"})
    cache.delete(f"throttle_user_{staff_user.pk}")


def test_requests_over_the_rate_are_a_429_with_retry_after(
    staff_client, two_per_minute
) -> None:
    # given
    staff_client.get(PAYOUTS)
    staff_client.get(PAYOUTS)
    # when
    response = staff_client.get(PAYOUTS)
    # then
    assert_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_requests_within_the_rate_are_served(staff_client, two_per_minute) -> None:
    # given
    staff_client.get(PAYOUTS)
    # when
    response = staff_client.get(PAYOUTS)
    # then
    assert response.status_code == 200


def test_the_rate_is_counted_per_user(staff_client, two_per_minute) -> None:
    # given
    for _ in range(3):
        staff_client.get(PAYOUTS)
    other = User.objects.create_user("other-staff", is_staff=True)
    cache.delete(f"throttle_user_{other.pk}")
    other_client = APIClient()
    other_client.force_authenticate(other)
    # when
    response = other_client.get(PAYOUTS)
    # then
    assert response.status_code == 200
