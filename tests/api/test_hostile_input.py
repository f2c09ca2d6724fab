"""Input that answered 500 once (found from outside, by schemathesis and by hand),
and the class each belongs to: instants at the edges of the calendar and of the
time-zone range, values nested or huge in anything decoded, numbers beyond the
column, bodies beyond the size limit."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from tests.api.support import EVENTS, PAYOUTS, assert_problem, post_payout
from tests.builders import card_payout

if TYPE_CHECKING:
    from rest_framework.test import APIClient


@pytest.mark.parametrize(
    "instant",
    [
        "0086-11-23T16:58:56+16:11",  # an offset PostgreSQL refuses as it is
        "2026-12-02T10:00:00-23:59",
        "0001-01-01T00:00:00-01:00",
    ],
)
def test_an_instant_with_any_rfc3339_offset_is_answered_not_a_500(
    staff_client: APIClient, instant: str
) -> None:
    response = staff_client.get(PAYOUTS, {"created_after": instant})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59-16:00", "0001-01-01T00:00:00+10:00"]
)
def test_an_instant_outside_the_calendar_in_utc_is_a_400_naming_it(
    staff_client: APIClient, instant: str
) -> None:
    body = assert_problem(staff_client.get(PAYOUTS, {"created_before": instant}), 400)
    assert "created_before" in body["errors"]


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"[" * 1100).decode(),  # RecursionError once
        base64.urlsafe_b64encode(b'["created_at", "' + b"x" * 5000 + b'"]').decode(),
    ],
)
def test_a_nested_or_huge_cursor_is_a_400(staff_client: APIClient, token: str) -> None:
    body = assert_problem(staff_client.get(PAYOUTS, {"cursor": token}), 400)
    assert "cursor" in body["errors"]


@pytest.mark.parametrize("value", ["1e200000", "-1e200000", "1" * 40, "0.00001"])
@pytest.mark.parametrize("name", ["amount_min", "amount_max"])
def test_an_amount_filter_beyond_the_column_is_a_400_naming_it(
    staff_client: APIClient, name: str, value: str
) -> None:
    body = assert_problem(staff_client.get(PAYOUTS, {name: value}), 400)
    assert name in body["errors"]


def test_a_body_up_to_1_mib_is_validated_field_by_field(
    staff_client: APIClient,
) -> None:
    body = assert_problem(
        post_payout(staff_client, card_payout(description="x" * 100_000)), 400
    )
    assert list(body["errors"]) == ["description"]


def test_a_body_over_1_mib_is_a_413_problem(staff_client: APIClient) -> None:
    body = assert_problem(
        post_payout(staff_client, card_payout(description="x" * (1024 * 1024))), 413
    )
    assert "1 MiB" in body["detail"]


@pytest.mark.parametrize("path", [PAYOUTS, EVENTS])
def test_an_unknown_format_is_a_400_naming_it(
    staff_client: APIClient, path: str
) -> None:
    # found by schemathesis: DRF answers an unknown ?format= with a 404
    body = assert_problem(staff_client.get(path, {"format": "AAA"}), 400)
    assert list(body["errors"]) == ["format"]
