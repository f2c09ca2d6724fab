"""manage.py create_api_key and revoke_api_key, checked through the API they open."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api.models import ApiKey
from tests.api.support import PAYOUTS, assert_problem, bearer_client


def create_key(username: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", username, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def bearer_get(key: str):
    return bearer_client(key).get(PAYOUTS)


def test_create_api_key_prints_the_key_alone_on_its_last_line(staff_user) -> None:
    # when
    stdout, _ = create_key("staff")
    # then
    last = stdout.rstrip("\n").splitlines()[-1]
    assert last == last.strip()
    assert " " not in last
    assert len(last) > 30


def test_the_printed_key_begins_with_its_stored_non_secret_prefix(staff_user) -> None:
    # when
    stdout, _ = create_key("staff")
    # then
    key = stdout.splitlines()[-1]
    stored = ApiKey.objects.get(user=staff_user)
    assert len(stored.prefix) >= 8
    assert key.startswith(stored.prefix)


def test_the_printed_key_authenticates_its_user(ledger, staff_user) -> None:
    # given
    key = create_key("staff")[0].splitlines()[-1]
    # when
    response = bearer_get(key)
    # then
    assert response.status_code == 200


def test_the_key_is_stored_hashed_never_in_full(staff_user) -> None:
    # when
    key = create_key("staff")[0].splitlines()[-1]
    # then
    stored = ApiKey.objects.get(user=staff_user)
    assert key not in {stored.hashed_key, stored.prefix, stored.name}


def test_create_api_key_records_the_name_given(staff_user) -> None:
    # when
    create_key("staff", "--name", "back office")
    # then
    assert ApiKey.objects.get(user=staff_user).name == "back office"


def test_each_created_key_is_different(staff_user) -> None:
    # when
    first = create_key("staff")[0].splitlines()[-1]
    second = create_key("staff")[0].splitlines()[-1]
    # then
    assert first != second


def test_create_api_key_for_an_unknown_user_fails(db) -> None:
    # when / then
    with pytest.raises(CommandError, match="nobody"):
        create_key("nobody")


def test_revoke_api_key_by_prefix_makes_the_key_a_401(ledger, staff_user) -> None:
    # given
    key, plain = ApiKey.issue(staff_user, "to revoke")
    # when
    call_command("revoke_api_key", key.prefix, stdout=StringIO())
    # then
    assert_problem(bearer_get(plain), 401)


def test_revoke_api_key_leaves_other_keys_working(ledger, staff_user) -> None:
    # given
    revoked, _ = ApiKey.issue(staff_user, "to revoke")
    _, kept = ApiKey.issue(staff_user, "to keep")
    # when
    call_command("revoke_api_key", revoked.prefix, stdout=StringIO())
    # then
    assert bearer_get(kept).status_code == 200


def test_revoking_twice_says_it_was_already_revoked(staff_user) -> None:
    # given
    key, _ = ApiKey.issue(staff_user, "to revoke")
    call_command("revoke_api_key", key.prefix, stdout=StringIO())
    out = StringIO()
    # when
    call_command("revoke_api_key", key.prefix, stdout=out)
    # then
    assert "already" in out.getvalue()


def test_revoke_api_key_with_an_unknown_prefix_fails(db) -> None:
    # when / then
    with pytest.raises(CommandError):
        call_command("revoke_api_key", "pl_nothere", stdout=StringIO())
