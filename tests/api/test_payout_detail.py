"""GET /api/v1/payouts/{id}/: read from the event store, now or at a version or instant."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.support import assert_invalid, assert_problem, detail_url, post_payout


@pytest.fixture
def cancelled_payout(staff_client, clock) -> dict:
    """Created at 09:00:01Z (version 1), cancelled at 09:00:02Z (version 2)."""
    created = post_payout(staff_client).json()
    staff_client.delete(detail_url(created["id"]))
    return created


def test_a_payout_is_readable_right_after_its_post_without_projection(
    staff_client,
) -> None:
    # given
    created = post_payout(staff_client).json()
    # when
    response = staff_client.get(detail_url(created["id"]))
    # then
    assert response.status_code == 200
    assert response.json() == created


def test_the_etag_is_the_quoted_version(staff_client) -> None:
    # given
    created = post_payout(staff_client).json()
    # when
    response = staff_client.get(detail_url(created["id"]))
    # then
    assert response["ETag"] == '"1"'


def test_the_etag_follows_each_new_event(staff_client, move_to) -> None:
    # given
    created = post_payout(staff_client).json()
    move_to(created["id"], "completed")
    # when
    response = staff_client.get(detail_url(created["id"]))
    # then
    assert response.json()["version"] == 3
    assert response["ETag"] == '"3"'


def test_a_completed_payout_reads_as_completed(staff_client, move_to) -> None:
    # given
    created = post_payout(staff_client).json()
    move_to(created["id"], "completed")
    # when
    payout = staff_client.get(detail_url(created["id"])).json()
    # then
    assert payout["status"] == "completed"
    assert payout["failure_reason"] is None


def test_a_failed_payout_carries_its_failure_reason(staff_client, move_to) -> None:
    # given
    created = post_payout(staff_client).json()
    move_to(created["id"], "failed")
    # when
    payout = staff_client.get(detail_url(created["id"])).json()
    # then
    assert payout["status"] == "failed"
    assert payout["failure_reason"] == {"code": "card_declined", "message": "Declined."}


def test_updated_at_moves_with_the_last_event(staff_client, cancelled_payout) -> None:
    # when
    payout = staff_client.get(detail_url(cancelled_payout["id"])).json()
    # then
    assert payout["created_at"] == "2026-03-02T09:00:01Z"
    assert payout["updated_at"] == "2026-03-02T09:00:02Z"


# ?version=


def test_version_replays_the_payout_to_that_version(
    staff_client, cancelled_payout
) -> None:
    # when
    response = staff_client.get(detail_url(cancelled_payout["id"]), {"version": 1})
    # then
    assert response.status_code == 200
    assert response.json() == cancelled_payout
    assert response["ETag"] == '"1"'


@pytest.mark.parametrize(
    "query",
    [
        {"version": "3"},
        {"as_of": "2026-03-02T09:00:00.999999Z"},
        {"version": "2", "as_of": "2026-03-02T09:00:01Z"},
    ],
    ids=["version", "before it existed", "version not there yet"],
)
def test_a_version_or_an_instant_the_payout_never_had_is_a_404_problem(
    staff_client, cancelled_payout, query
) -> None:
    # when
    response = staff_client.get(detail_url(cancelled_payout["id"]), query)
    # then
    assert_problem(response, 404)


@pytest.mark.parametrize("version", ["abc", "-1", "1.5", "", " 1", "²", "1e3"])
def test_a_version_that_is_not_a_positive_integer_is_a_400(
    staff_client, cancelled_payout, version
) -> None:
    # when
    response = staff_client.get(
        detail_url(cancelled_payout["id"]), {"version": version}
    )
    # then
    assert_invalid(response, "version")


# ?as_of=


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        ("2026-03-02T09:00:01Z", "pending"),
        ("2026-03-02T10:00:02+01:00", "cancelled"),
    ],
)
def test_as_of_replays_the_events_at_or_before_that_instant(
    staff_client, cancelled_payout, as_of, status
) -> None:
    # when
    response = staff_client.get(
        f"{detail_url(cancelled_payout['id'])}?as_of={quote(as_of)}"
    )
    # then
    assert response.status_code == 200
    assert response.json()["status"] == status


def test_an_as_of_whose_plus_sign_was_not_encoded_is_understood(
    staff_client, cancelled_payout
) -> None:
    # when: a raw "+" in a query string arrives as a space
    response = staff_client.get(
        f"{detail_url(cancelled_payout['id'])}?as_of=2026-03-02T10:00:01+01:00"
    )
    # then
    assert response.json()["status"] == "pending"


def test_bad_version_and_bad_as_of_are_both_named(
    staff_client, cancelled_payout
) -> None:
    # when
    response = staff_client.get(
        detail_url(cancelled_payout["id"]), {"version": "x", "as_of": "y"}
    )
    # then
    assert_invalid(response, "version", "as_of")
