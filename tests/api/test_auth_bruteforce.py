"""Failed authentications are throttled per address and per username, before any
password hash is computed (django-axes, api/lockout.py)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiKey
from tests.api.support import PAYOUTS, assert_problem, basic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.contrib.auth.models import User

    from ledger.application import Payouts

LIMIT = 5
LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def limits(settings: Any) -> None:
    settings.AUTH_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AUTH_LOCKOUT_SECONDS = 300
    settings.AXES_COOLOFF_TIME = timedelta(seconds=300)


class Hashes:
    def __init__(self, *calls: mock.MagicMock) -> None:
        self._calls = calls

    @property
    def count(self) -> int:
        return sum(c.call_count for c in self._calls)


@pytest.fixture
def hashes() -> Iterator[Hashes]:
    """Counts every password hash computed: a check, or the dummy hash Django computes
    for an unknown user so that timing does not tell which users exist."""
    with (
        mock.patch(
            "django.contrib.auth.base_user.check_password", wraps=check_password
        ) as checked,
        mock.patch(
            "django.contrib.auth.base_user.make_password", wraps=make_password
        ) as made,
    ):
        yield Hashes(checked, made)


def api_get(authorization: str, address: str = "203.0.113.7") -> Any:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(PAYOUTS)


def assert_locked(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0


def test_fifty_wrong_basic_passwords_are_answered_429_without_hashing(
    ledger: Payouts, staff_user: User, hashes: Hashes
) -> None:
    # when
    started = time.perf_counter()
    statuses = [api_get(basic("staff", f"guess-{i}")).status_code for i in range(50)]
    elapsed = time.perf_counter() - started
    print(f"50 wrong Basic passwords answered in {elapsed:.2f} s: {statuses}")
    # then
    # the failure that reaches the limit is answered 429 already
    assert statuses == [401] * (LIMIT - 1) + [429] * (50 - LIMIT + 1)
    assert hashes.count == LIMIT
    locked = api_get(basic("staff", "staff-pass"))
    body = assert_problem(locked, 429)
    assert body["code"] == "authentication_locked"
    assert int(locked["Retry-After"]) == 300
    assert hashes.count == LIMIT  # the right password is not even checked


def test_fifty_wrong_admin_passwords_are_answered_429_without_hashing(
    staff_user: User, hashes: Hashes
) -> None:
    # given
    browser = Client(REMOTE_ADDR="198.51.100.4")
    # when
    started = time.perf_counter()
    responses = [
        browser.post(LOGIN, {"username": "staff", "password": f"guess-{i}"})
        for i in range(50)
    ]
    elapsed = time.perf_counter() - started
    statuses = [r.status_code for r in responses]
    print(f"50 wrong admin passwords answered in {elapsed:.2f} s: {statuses}")
    # then: the form is shown again with its error until the lock, then 429
    assert statuses == [200] * (LIMIT - 1) + [429] * (50 - LIMIT + 1)
    assert int(responses[-1]["Retry-After"]) == 300
    assert hashes.count == LIMIT
    right = browser.post(LOGIN, {"username": "staff", "password": "staff-pass"})
    assert_locked(right)
    assert "_auth_user_id" not in browser.session


def test_a_username_is_locked_whatever_the_address(
    ledger: Payouts, staff_user: User, hashes: Hashes
) -> None:
    # when: every guess from another address
    statuses = [
        api_get(basic("staff", "wrong"), address=f"192.0.2.{i}").status_code
        for i in range(LIMIT + 2)
    ]
    # then
    assert statuses == [401] * (LIMIT - 1) + [429] * 3
    # another user from a fresh address is not affected
    other = api_get(basic("someone-else", "wrong"), address="192.0.2.200")
    assert other.status_code == 401


def test_an_address_is_locked_whatever_the_username(
    ledger: Payouts, staff_user: User, hashes: Hashes
) -> None:
    # when: every guess names another user
    statuses = [
        api_get(basic(f"user{i}", "wrong"), address="192.0.2.9").status_code
        for i in range(LIMIT + 2)
    ]
    # then
    assert statuses == [401] * (LIMIT - 1) + [429] * 3
    assert hashes.count == LIMIT
    # even the right password from that address waits
    assert_locked(api_get(basic("staff", "staff-pass"), address="192.0.2.9"))
    # and the same user from elsewhere is served
    assert (
        api_get(basic("staff", "staff-pass"), address="192.0.2.10").status_code == 200
    )


def test_wrong_api_keys_lock_the_address(ledger: Payouts, staff_api_key: str) -> None:
    # when
    statuses = [
        api_get(f"Bearer pl_guess{i:04}.secret", address="192.0.2.30").status_code
        for i in range(LIMIT + 2)
    ]
    # then
    assert statuses == [401] * (LIMIT - 1) + [429] * 3
    assert_locked(api_get(f"Bearer {staff_api_key}", address="192.0.2.30"))
    assert api_get(f"Bearer {staff_api_key}", address="192.0.2.31").status_code == 200


def test_guesses_at_one_key_prefix_lock_that_prefix_from_any_address(
    ledger: Payouts, staff_user: User
) -> None:
    # given
    key, _ = ApiKey.issue(staff_user, "target")
    # when: the prefix is not secret; the part after it is guessed
    statuses = [
        api_get(
            f"Bearer {key.prefix}.guess{i}", address=f"192.0.2.{40 + i}"
        ).status_code
        for i in range(LIMIT + 1)
    ]
    # then
    assert statuses == [401] * (LIMIT - 1) + [429, 429]


def test_the_lock_ends_after_the_lockout_time(
    ledger: Payouts, staff_user: User
) -> None:
    # given: locked out
    for _ in range(LIMIT):
        api_get(basic("staff", "wrong"))
    assert_locked(api_get(basic("staff", "staff-pass")))
    # when: the failures are older than AUTH_LOCKOUT_SECONDS
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=301))
    # then
    assert api_get(basic("staff", "staff-pass")).status_code == 200


def test_an_expired_api_key_is_a_401(ledger: Payouts, staff_user: User) -> None:
    # given
    _, expired = ApiKey.issue(
        staff_user, "old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    _, current = ApiKey.issue(
        staff_user, "new", expires_at=timezone.now() + timedelta(days=1)
    )
    # when
    refused = api_get(f"Bearer {expired}")
    # then
    body = assert_problem(refused, 401)
    assert "expired" in body["detail"]
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert api_get(f"Bearer {current}").status_code == 200


def test_create_api_key_sets_an_expiry(staff_user: User, capsys: Any) -> None:
    # when
    call_command("create_api_key", "staff", "--name", "ci", "--expires-in", "30")
    # then
    plain = capsys.readouterr().out.strip().splitlines()[-1]
    key = ApiKey.objects.get(prefix=plain.partition(".")[0])
    left = key.expires_at - timezone.now()
    assert timedelta(days=29) < left <= timedelta(days=30)


@pytest.mark.parametrize(
    "password",
    ["short", "password1234", "12345678901234"],
)
def test_weak_passwords_are_refused(staff_user: User, password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password, user=staff_user)


def test_a_strong_password_is_accepted(staff_user: User) -> None:
    validate_password("correct horse battery staple 42", user=staff_user)


# Key permissions in the admin


@pytest.fixture
def limited_staff(db: Any) -> User:
    """Staff who may look at API keys, and nothing more."""
    from django.contrib.auth.models import User

    user = User.objects.create_user(
        "viewer", password="viewer-pass-2026", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    return user


def test_revoking_keys_needs_the_change_permission(
    staff_user: User, limited_staff: User
) -> None:
    # given
    key, _ = ApiKey.issue(staff_user, "keep")
    viewer = Client()
    viewer.force_login(limited_staff)
    # when
    page = viewer.get("/admin/api/apikey/")
    posted = viewer.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    # then
    assert page.status_code == 200
    assert b"revoke_keys" not in page.content
    assert posted.status_code in (200, 302, 403)
    key.refresh_from_db()
    assert key.revoked_at is None
    # with the permission, the action is offered and works
    limited_staff.user_permissions.add(Permission.objects.get(codename="change_apikey"))
    viewer.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_creating_keys_needs_the_add_permission(limited_staff: User) -> None:
    # given
    viewer = Client()
    viewer.force_login(limited_staff)
    # when
    response = viewer.post(
        "/admin/api/apikey/add/", {"user": limited_staff.pk, "name": "mine"}
    )
    # then
    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_staff_without_superuser_make_keys_only_for_themselves(
    staff_user: User, limited_staff: User
) -> None:
    # given
    limited_staff.user_permissions.add(Permission.objects.get(codename="add_apikey"))
    viewer = Client()
    viewer.force_login(limited_staff)
    # when: asking for a key that acts as another user
    response = viewer.post(
        "/admin/api/apikey/add/", {"user": staff_user.pk, "name": "theirs"}
    )
    # then
    assert response.status_code == 200  # the form again, with its error
    assert not ApiKey.objects.filter(user=staff_user).exists()
    viewer.post("/admin/api/apikey/add/", {"user": limited_staff.pk, "name": "mine"})
    assert ApiKey.objects.filter(user=limited_staff).count() == 1
