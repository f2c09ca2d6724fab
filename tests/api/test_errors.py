"""One error shape everywhere: routing 404s and 405s too, and never a 500 for bad input."""

from __future__ import annotations

import base64
import json
import string
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.support import (
    EVENTS,
    LIST_PARAMETERS,
    PAYOUTS,
    SOME_ID,
    assert_problem,
    detail_url,
    history_url,
    post_payout,
)

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here/",
        "/api/v1/payouts/not-a-uuid/",
        f"/api/v1/payouts/{SOME_ID}/unknown/",
        "/api/v2/payouts/",
    ],
)
def test_an_unknown_route_is_a_404_problem(staff_client, path) -> None:
    # when
    response = staff_client.get(path)
    # then
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", PAYOUTS, "GET, POST"),
        ("delete", PAYOUTS, "GET, POST"),
        ("patch", PAYOUTS, "GET, POST"),
        ("put", detail_url(SOME_ID), "GET, PATCH, DELETE"),
        ("post", detail_url(SOME_ID), "GET, PATCH, DELETE"),
        ("post", history_url(SOME_ID), "GET"),
        ("delete", history_url(SOME_ID), "GET"),
        ("post", EVENTS, "GET"),
    ],
)
def test_a_method_not_listed_is_a_405_problem_naming_the_allowed_ones(
    staff_client, method, path, allowed
) -> None:
    # when
    response = getattr(staff_client, method)(path, {}, format="json")
    # then
    assert_problem(response, 405)
    assert response["Allow"].startswith(allowed)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", detail_url(SOME_ID), None),
        ("get", f"{detail_url(SOME_ID)}?version=1", None),
        ("patch", detail_url(SOME_ID), {"status": "cancelled"}),
        ("patch", detail_url(SOME_ID), {"status": "completed"}),
        ("delete", detail_url(SOME_ID), None),
        ("get", history_url(SOME_ID), None),
    ],
    ids=["read", "read a version", "cancel", "change", "delete", "history"],
)
def test_an_unknown_payout_is_a_404_problem_wherever_it_is_named(
    staff_client, method, path, body
) -> None:
    # when
    response = getattr(staff_client, method)(path, body, format="json")
    # then
    assert assert_problem(response, 404)["code"] == "not_found"


def test_a_problem_type_is_a_uri_and_its_title_is_stable(staff_client) -> None:
    # when
    problem = assert_problem(staff_client.get("/api/v1/nothing-here/"), 404)
    # then
    assert problem["type"].startswith("https://")
    assert problem["title"] == "Not found"


# Fuzzing: whatever the body or query, the answer is never a 500.

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = JSON_VALUES | st.sampled_from(
    ["card", "bank_account", "EUR", "JPY", "1.00", "0", "-1", "4242424242424242"]
)
RECIPIENTS = st.fixed_dictionaries(
    {"type": st.sampled_from(["card", "bank_account", "wallet"]) | JSON_VALUES},
    optional={
        "number": FIELD_VALUES,
        "iban": FIELD_VALUES,
        "bic": FIELD_VALUES,
        "holder": FIELD_VALUES,
    },
)
PAYOUT_BODIES = (
    st.fixed_dictionaries(
        {
            "amount": FIELD_VALUES,
            "currency": FIELD_VALUES,
            "recipient_details": RECIPIENTS | FIELD_VALUES,
        },
        optional={"description": FIELD_VALUES},
    )
    | JSON_VALUES
)
EDGE_VALUES = [
    "",
    "-",
    "0",
    "1e999",
    "NaN",
    "2026-03-02T09:00:00+01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]
NUMERIC_TEXT = st.text(alphabet="0123456789\u00b2\u0663-+.:TZe ", max_size=12)
DIGITS_OF_ALL_KINDS = st.text(alphabet="19\u00b2\u0663", min_size=1, max_size=4)
QUERY_TEXT = (
    st.text(alphabet=string.printable + "\u00e9\u00ff\u202e", max_size=40)
    | NUMERIC_TEXT
    | DIGITS_OF_ALL_KINDS
    | st.sampled_from(EDGE_VALUES)
)


def answered_without_a_server_error(response) -> bool:
    if response.status_code >= 500:
        return False
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    return True


@FUZZ
@given(body=PAYOUT_BODIES)
def test_no_create_body_is_answered_with_a_500(staff_client, body) -> None:
    # when
    response = staff_client.post(
        PAYOUTS, json.dumps(body), content_type="application/json"
    )
    # then
    assert answered_without_a_server_error(response), (body, response.content)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {}, optional={"status": FIELD_VALUES, "reason": FIELD_VALUES}
    )
    | JSON_VALUES
)
def test_no_patch_body_is_answered_with_a_500(staff_client, body) -> None:
    # given
    payout_id = post_payout(staff_client).json()["id"]
    # when
    response = staff_client.patch(
        detail_url(payout_id), json.dumps(body), content_type="application/json"
    )
    # then
    assert answered_without_a_server_error(response), (body, response.content)


@FUZZ
@given(query=st.dictionaries(st.sampled_from(LIST_PARAMETERS), QUERY_TEXT, max_size=3))
def test_no_list_query_is_answered_with_a_500(staff_client, query) -> None:
    # when
    response = staff_client.get(f"{PAYOUTS}?{urlencode(query)}")
    # then
    assert answered_without_a_server_error(response), (query, response.content)


@FUZZ
@given(
    ordering=st.sampled_from(["-created_at", "amount", "updated_at"]),
    parts=st.tuples(
        st.sampled_from(["-created_at", "amount", "updated_at"]),
        QUERY_TEXT,
        st.uuids().map(str) | QUERY_TEXT,
        st.booleans(),
    ),
)
def test_no_forged_cursor_is_answered_with_a_500(staff_client, ordering, parts) -> None:
    # given
    cursor = base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()
    # when
    response = staff_client.get(PAYOUTS, {"ordering": ordering, "cursor": cursor})
    # then
    assert answered_without_a_server_error(response), (parts, response.content)


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(["version", "as_of"]), QUERY_TEXT, max_size=2)
)
def test_no_detail_query_is_answered_with_a_500(staff_client, query) -> None:
    # when
    response = staff_client.get(f"{detail_url(SOME_ID)}?{urlencode(query)}")
    # then
    assert answered_without_a_server_error(response), (query, response.content)


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(["after", "limit"]), QUERY_TEXT, max_size=2),
    accept=st.sampled_from(["application/json", "application/x-ndjson", "*/*"]),
)
def test_no_feed_query_is_answered_with_a_500(staff_client, query, accept) -> None:
    # when
    response = staff_client.get(f"{EVENTS}?{urlencode(query)}", HTTP_ACCEPT=accept)
    # then
    assert answered_without_a_server_error(response), (query, response.content)


@FUZZ
@given(if_match=st.text(alphabet=string.printable, max_size=20))
def test_no_if_match_header_is_answered_with_a_500(staff_client, if_match) -> None:
    # when
    response = staff_client.delete(detail_url(SOME_ID), HTTP_IF_MATCH=if_match)
    # then
    assert answered_without_a_server_error(response), (if_match, response.content)
