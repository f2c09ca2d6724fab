"""PATCH and DELETE /api/v1/payouts/{id}/: cancelling, the state machine's 409, If-Match.

Which transitions exist is the ledger's rule, tested in tests/unit (test_payout.py,
test_client_requests.py); here, each answer's shape once per way of asking."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import (
    assert_invalid,
    assert_problem,
    detail_url,
    history_url,
    post_payout,
)

CANCEL = {"status": "cancelled", "reason": "Customer asked"}
SUCCESS = {"patch": 200, "delete": 204}


@pytest.fixture
def payout_id(staff_client) -> str:
    return post_payout(staff_client).json()["id"]


def patch(client, payout_id: str, body: object, **headers: str):
    return client.patch(detail_url(payout_id), body, format="json", **headers)


def ask(client, method: str, payout_id: str, body: Any = None, **headers: str):
    """PATCH with `body` (a cancel by default), or DELETE."""
    if method == "delete":
        return client.delete(detail_url(payout_id), **headers)
    return patch(client, payout_id, CANCEL if body is None else body, **headers)


def version_of(client, payout_id: str) -> int:
    return client.get(detail_url(payout_id)).json()["version"]


# Cancelling


def test_cancelling_a_pending_payout_answers_200_with_the_cancelled_payout(
    staff_client, payout_id
) -> None:
    # when
    response = patch(staff_client, payout_id, CANCEL)
    # then
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["version"] == 2
    assert response["ETag"] == '"2"'


def test_the_cancellation_reason_is_recorded_in_the_history(
    staff_client, payout_id
) -> None:
    # when
    patch(staff_client, payout_id, CANCEL)
    # then
    last = staff_client.get(history_url(payout_id)).json()[-1]
    assert last["type"] == "Cancelled"
    assert last["data"] == {"reason": "Customer asked"}


def test_deleting_a_pending_payout_answers_204_without_a_body(
    staff_client, payout_id
) -> None:
    # when
    response = staff_client.delete(detail_url(payout_id))
    # then
    assert response.status_code == 204
    assert response.content == b""


def test_a_deleted_payout_is_cancelled_and_nothing_is_erased(
    staff_client, payout_id
) -> None:
    # when
    staff_client.delete(detail_url(payout_id))
    # then
    assert staff_client.get(detail_url(payout_id)).json()["status"] == "cancelled"
    history = staff_client.get(history_url(payout_id)).json()
    assert [e["type"] for e in history] == ["Created", "Cancelled"]


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_cancelling_an_already_cancelled_payout_succeeds_and_records_nothing(
    staff_client, payout_id, method
) -> None:
    # given
    ask(staff_client, method, payout_id)
    # when
    response = ask(staff_client, method, payout_id)
    # then
    assert response.status_code == SUCCESS[method]
    assert version_of(staff_client, payout_id) == 2


# The state machine: a 409 naming where the payout can go


@pytest.mark.parametrize(
    ("method", "body", "current", "allowed"),
    [
        ("patch", {"status": "completed"}, "pending", ["processing", "cancelled"]),
        ("patch", CANCEL, "processing", ["completed", "failed"]),
        ("delete", None, "failed", []),
    ],
    ids=["another status", "cancel", "delete"],
)
def test_a_change_the_state_machine_forbids_is_a_409_and_records_nothing(
    staff_client, payout_id, move_to, method, body, current, allowed
) -> None:
    # given
    move_to(payout_id, current)
    version = version_of(staff_client, payout_id)
    # when
    response = ask(staff_client, method, payout_id, body)
    # then
    problem = assert_problem(response, 409)
    assert problem["current_status"] == current
    assert problem["allowed_transitions"] == allowed
    assert version_of(staff_client, payout_id) == version


def test_a_bad_patch_body_is_a_400_naming_the_field(staff_client, payout_id) -> None:
    # when
    response = patch(staff_client, payout_id, {"status": "archived"})
    # then
    assert_invalid(response, "status")


# If-Match


@pytest.mark.parametrize(
    ("method", "if_match"),
    [
        *(("patch", value) for value in ['"1"', 'W/"1"', '  "1"  ', "*"]),
        ("delete", '"1"'),
    ],
)
def test_an_if_match_naming_the_current_version_lets_the_cancel_through(
    staff_client, payout_id, method, if_match
) -> None:
    # when
    response = ask(staff_client, method, payout_id, HTTP_IF_MATCH=if_match)
    # then
    assert response.status_code == SUCCESS[method]
    assert staff_client.get(detail_url(payout_id)).json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("method", "current"),
    [("patch", "processing"), ("patch", "cancelled"), ("delete", "completed")],
)
def test_a_stale_if_match_is_a_412_naming_the_current_version_whatever_the_state(
    staff_client, payout_id, move_to, method, current
) -> None:
    # given
    move_to(payout_id, current)
    version = version_of(staff_client, payout_id)
    # when
    response = ask(staff_client, method, payout_id, HTTP_IF_MATCH='"1"')
    # then
    problem = assert_problem(response, 412)
    assert problem["current_version"] == version
    assert version_of(staff_client, payout_id) == version


@pytest.mark.parametrize(
    ("method", "if_match"),
    [
        *(
            ("patch", value)
            for value in ["1", '"one"', '"1", "2"', "", 'W/"-1"', '"1', "0"]
        ),
        ("delete", "latest"),
    ],
)
def test_a_malformed_if_match_is_a_400_naming_it(
    staff_client, payout_id, method, if_match
) -> None:
    # when
    response = ask(staff_client, method, payout_id, HTTP_IF_MATCH=if_match)
    # then
    assert_invalid(response, "If-Match")
