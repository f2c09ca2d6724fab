"""PATCH and DELETE /api/v1/payouts/{id}/: cancelling, the state machine, If-Match."""

from __future__ import annotations

import uuid

import pytest

from tests.api.support import assert_problem, detail_url, history_url, post_payout

CANCEL = {"status": "cancelled", "reason": "Customer asked"}
ALLOWED_FROM = {
    "pending": ["processing", "cancelled"],
    "processing": ["completed", "failed"],
    "completed": [],
    "failed": [],
}


@pytest.fixture
def payout_id(staff_client) -> str:
    return post_payout(staff_client).json()["id"]


def patch(client, payout_id: str, body: object, **headers: str):
    return client.patch(detail_url(payout_id), body, format="json", **headers)


# PATCH


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


def test_cancelling_without_a_reason_is_allowed(staff_client, payout_id) -> None:
    # when
    response = patch(staff_client, payout_id, {"status": "cancelled"})
    # then
    assert response.status_code == 200


def test_cancelling_an_already_cancelled_payout_answers_200_and_records_nothing(
    staff_client, payout_id
) -> None:
    # given
    patch(staff_client, payout_id, CANCEL)
    # when
    response = patch(staff_client, payout_id, CANCEL)
    # then
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert len(staff_client.get(history_url(payout_id)).json()) == 2


@pytest.mark.parametrize("target", ["processing", "completed", "failed", "pending"])
def test_any_other_status_change_on_a_pending_payout_is_a_409(
    staff_client, payout_id, target
) -> None:
    # when
    response = patch(staff_client, payout_id, {"status": target})
    # then
    problem = assert_problem(response, 409)
    assert problem["current_status"] == "pending"
    assert problem["allowed_transitions"] == ["processing", "cancelled"]


@pytest.mark.parametrize("target", ["processing", "completed", "failed", "pending"])
def test_a_rejected_status_change_records_nothing(
    staff_client, payout_id, target
) -> None:
    # when
    patch(staff_client, payout_id, {"status": target})
    # then
    assert staff_client.get(detail_url(payout_id)).json()["version"] == 1


@pytest.mark.parametrize("current", ["processing", "completed", "failed"])
def test_cancelling_a_payout_past_pending_is_a_409_naming_where_it_can_go(
    staff_client, payout_id, move_to, current
) -> None:
    # given
    move_to(payout_id, current)
    # when
    response = patch(staff_client, payout_id, CANCEL)
    # then
    problem = assert_problem(response, 409)
    assert problem["current_status"] == current
    assert problem["allowed_transitions"] == ALLOWED_FROM[current]


def test_a_status_change_on_a_cancelled_payout_is_a_409_with_no_way_out(
    staff_client, payout_id
) -> None:
    # given
    patch(staff_client, payout_id, CANCEL)
    # when
    response = patch(staff_client, payout_id, {"status": "pending"})
    # then
    problem = assert_problem(response, 409)
    assert problem["current_status"] == "cancelled"
    assert problem["allowed_transitions"] == []


def test_cancelling_an_unknown_payout_is_a_404(staff_client) -> None:
    # when
    response = patch(staff_client, str(uuid.uuid4()), CANCEL)
    # then
    assert_problem(response, 404)


def test_another_status_change_on_an_unknown_payout_is_a_404(staff_client) -> None:
    # when
    response = patch(staff_client, str(uuid.uuid4()), {"status": "completed"})
    # then
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"reason": "x"}, "status"),
        ({"status": "archived"}, "status"),
        ({"status": "CANCELLED"}, "status"),
        ({"status": None}, "status"),
        ({"status": ["cancelled"]}, "status"),
        ({"status": "cancelled", "reason": "x" * 501}, "reason"),
        ({"status": "cancelled", "reason": None}, "reason"),
        ({"status": "cancelled", "amount": "1.00"}, "amount"),
    ],
)
def test_a_bad_patch_body_is_a_400_naming_the_field(
    staff_client, payout_id, body, field
) -> None:
    # when
    response = patch(staff_client, payout_id, body)
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == [field]


def test_a_patch_body_that_is_not_json_is_a_4xx_problem(
    staff_client, payout_id
) -> None:
    # when
    malformed = staff_client.patch(
        detail_url(payout_id), b"{status", content_type="application/json"
    )
    form = staff_client.patch(
        detail_url(payout_id), "status=cancelled", content_type="text/plain"
    )
    # then
    assert_problem(malformed, 400)
    assert_problem(form, 415)


# If-Match on PATCH


def test_if_match_with_the_current_version_lets_the_cancel_through(
    staff_client, payout_id
) -> None:
    # when
    response = patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH='"1"')
    # then
    assert response.status_code == 200


@pytest.mark.parametrize("if_match", ['W/"1"', '  "1"  ', "*"])
def test_weak_padded_and_star_if_match_are_understood(
    staff_client, payout_id, if_match
) -> None:
    # when
    response = patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH=if_match)
    # then
    assert response.status_code == 200


def test_a_stale_if_match_on_patch_is_a_412_naming_the_current_version(
    staff_client, payout_id, move_to
) -> None:
    # given
    move_to(payout_id, "processing")
    # when
    response = patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH='"1"')
    # then
    problem = assert_problem(response, 412)
    assert problem["current_version"] == 2


@pytest.mark.parametrize("current", ["pending", "cancelled", "completed", "failed"])
def test_a_stale_if_match_on_patch_is_a_412_whatever_the_state(
    staff_client, payout_id, move_to, current
) -> None:
    # given
    move_to(payout_id, current)
    # when
    response = patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH='"7"')
    # then
    assert_problem(response, 412)


def test_a_stale_if_match_wins_over_a_forbidden_transition(
    staff_client, payout_id
) -> None:
    # when
    response = patch(
        staff_client, payout_id, {"status": "completed"}, HTTP_IF_MATCH='"5"'
    )
    # then
    assert_problem(response, 412)


def test_a_stale_if_match_records_nothing(staff_client, payout_id) -> None:
    # when
    patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH='"2"')
    # then
    assert staff_client.get(detail_url(payout_id)).json()["status"] == "pending"


@pytest.mark.parametrize("if_match", ["1", '"one"', '"1", "2"', "", 'W/"-1"', '"1'])
def test_a_malformed_if_match_on_patch_is_a_400(
    staff_client, payout_id, if_match
) -> None:
    # when
    response = patch(staff_client, payout_id, CANCEL, HTTP_IF_MATCH=if_match)
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["If-Match"]


# DELETE


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


def test_deleting_an_already_cancelled_payout_answers_204_and_records_nothing(
    staff_client, payout_id
) -> None:
    # given
    staff_client.delete(detail_url(payout_id))
    # when
    response = staff_client.delete(detail_url(payout_id))
    # then
    assert response.status_code == 204
    assert staff_client.get(detail_url(payout_id)).json()["version"] == 2


@pytest.mark.parametrize("current", ["processing", "completed", "failed"])
def test_deleting_a_payout_past_pending_is_a_409(
    staff_client, payout_id, move_to, current
) -> None:
    # given
    move_to(payout_id, current)
    # when
    response = staff_client.delete(detail_url(payout_id))
    # then
    problem = assert_problem(response, 409)
    assert problem["current_status"] == current
    assert problem["allowed_transitions"] == ALLOWED_FROM[current]


def test_deleting_an_unknown_payout_is_a_404(staff_client) -> None:
    # when
    response = staff_client.delete(detail_url(uuid.uuid4()))
    # then
    assert_problem(response, 404)


def test_delete_with_the_current_if_match_cancels(staff_client, payout_id) -> None:
    # when
    response = staff_client.delete(detail_url(payout_id), HTTP_IF_MATCH='"1"')
    # then
    assert response.status_code == 204


@pytest.mark.parametrize("current", ["pending", "cancelled", "completed"])
def test_a_stale_if_match_on_delete_is_a_412_whatever_the_state(
    staff_client, payout_id, move_to, current
) -> None:
    # given
    move_to(payout_id, current)
    # when
    response = staff_client.delete(detail_url(payout_id), HTTP_IF_MATCH='"9"')
    # then
    assert_problem(response, 412)


def test_a_malformed_if_match_on_delete_is_a_400(staff_client, payout_id) -> None:
    # when
    response = staff_client.delete(detail_url(payout_id), HTTP_IF_MATCH="latest")
    # then
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["If-Match"]
