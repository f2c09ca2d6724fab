"""GET /api/v1/payouts/{id}/history/ and GET /api/v1/events/ (JSON and NDJSON)."""

from __future__ import annotations

import pytest

from tests.api.support import (
    EVENTS,
    assert_invalid,
    assert_problem,
    bearer_client,
    history_url,
    ndjson,
    post_payout,
    seed_payouts,
)
from tests.builders import card_payout

FULL_NUMBER = "4111111111111111"


# History


def test_history_lists_a_payouts_events_in_order(staff_client, clock, move_to) -> None:
    # given
    payout_id = post_payout(staff_client).json()["id"]
    move_to(payout_id, "completed")
    # when
    response = staff_client.get(history_url(payout_id))
    # then
    assert response.status_code == 200
    assert [(e["version"], e["type"]) for e in response.json()] == [
        (1, "Created"),
        (2, "ProcessingStarted"),
        (3, "Completed"),
    ]
    assert [e["occurred_at"] for e in response.json()] == [
        "2026-03-02T09:00:01Z",
        "2026-03-02T09:00:02Z",
        "2026-03-02T09:00:03Z",
    ]


def test_history_names_the_user_who_acted(staff_client) -> None:
    # given
    payout_id = post_payout(staff_client).json()["id"]
    # when
    created = staff_client.get(history_url(payout_id)).json()[0]
    # then
    assert created["actor"] == {"type": "user", "id": "staff"}


def test_history_names_the_api_key_by_its_prefix(staff_api_key) -> None:
    # given
    client = bearer_client(staff_api_key)
    payout_id = post_payout(client).json()["id"]
    # when
    created = client.get(history_url(payout_id)).json()[0]
    # then
    assert created["actor"] == {"type": "api_key", "id": staff_api_key.split(".")[0]}


def test_history_shows_the_created_data_with_the_card_number_masked(
    staff_client,
) -> None:
    # given
    payout_id = post_payout(staff_client, card_payout(number=FULL_NUMBER)).json()["id"]
    # when
    response = staff_client.get(history_url(payout_id))
    # then
    assert response.json()[0]["data"] == {
        "amount": "1500.00",
        "currency": "EUR",
        "recipient_details": {
            "type": "card",
            "number": "411111******1111",
            "holder": "Ada Lovelace",
        },
        "description": "Invoice 118",
    }
    assert FULL_NUMBER not in response.content.decode()


def test_history_shows_why_a_payout_failed(staff_client, move_to) -> None:
    # given
    payout_id = post_payout(staff_client).json()["id"]
    move_to(payout_id, "failed")
    # when
    failed = staff_client.get(history_url(payout_id)).json()[-1]
    # then
    assert failed["type"] == "Failed"
    assert failed["data"] == {
        "failure_reason": {"code": "card_declined", "message": "Declined."}
    }


# Event feed (JSON)


def test_the_feed_is_a_json_array_of_every_event_in_commit_order(
    staff_client, move_to
) -> None:
    # given
    first = post_payout(staff_client).json()["id"]
    second = post_payout(staff_client).json()["id"]
    move_to(first, "cancelled")
    # when
    response = staff_client.get(EVENTS)
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert [(e["payout_id"], e["version"], e["type"]) for e in response.json()] == [
        (first, 1, "Created"),
        (second, 1, "Created"),
        (first, 2, "Cancelled"),
    ]


def test_feed_positions_strictly_increase(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 5)
    # when
    positions = [e["position"] for e in staff_client.get(EVENTS).json()]
    # then
    assert positions == sorted(set(positions))
    assert len(positions) == 5


def test_a_feed_entry_has_the_documented_fields(staff_client, clock) -> None:
    # given
    payout_id = post_payout(staff_client).json()["id"]
    # when
    entry = staff_client.get(EVENTS).json()[0]
    # then
    assert entry["payout_id"] == payout_id
    assert entry["occurred_at"] == "2026-03-02T09:00:01Z"
    assert isinstance(entry["position"], int)
    assert entry["data"]["recipient_details"]["number"] == "424242******4242"


def test_the_feed_never_shows_a_full_card_number(staff_client) -> None:
    # given
    post_payout(staff_client, card_payout(number=FULL_NUMBER))
    # when
    response = staff_client.get(EVENTS)
    # then
    assert FULL_NUMBER not in response.content.decode()


def test_after_returns_only_the_events_past_that_position(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 5)
    everything = staff_client.get(EVENTS).json()
    # when
    response = staff_client.get(EVENTS, {"after": everything[1]["position"]})
    # then
    assert response.json() == everything[2:]


def test_after_the_last_position_the_feed_is_empty(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 2)
    last = staff_client.get(EVENTS).json()[-1]["position"]
    # when
    response = staff_client.get(EVENTS, {"after": last})
    # then
    assert response.json() == []


def test_limit_caps_the_entries_and_links_the_next_page(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 5)
    everything = staff_client.get(EVENTS).json()
    # when
    response = staff_client.get(EVENTS, {"limit": 2})
    # then
    assert response.json() == everything[:2]
    assert f"after={everything[1]['position']}" in response["Link"]
    assert 'rel="next"' in response["Link"]


def test_following_the_link_header_reads_the_whole_feed_once(
    staff_client, ledger
) -> None:
    # given
    seed_payouts(ledger, 5)
    everything = staff_client.get(EVENTS).json()
    # when
    seen, url = [], f"{EVENTS}?limit=2"
    while url:
        response = staff_client.get(url)
        seen += response.json()
        url = response.get("Link", "").partition("<")[2].partition(">")[0]
    # then
    assert seen == everything


def test_the_default_limit_is_100(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 101)
    # when
    response = staff_client.get(EVENTS)
    # then
    assert len(response.json()) == 100


def test_a_limit_of_1000_is_accepted(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 1001)
    # when
    response = staff_client.get(EVENTS, {"limit": 1000})
    # then
    assert len(response.json()) == 1000


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "1001"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"after": "abc"}, "after"),
        ({"after": "1.5"}, "after"),
        ({"after": "²"}, "after"),
        ({"after": "9" * 19}, "after"),
    ],
)
def test_a_bad_after_or_limit_is_a_400_naming_it(staff_client, query, field) -> None:
    # when
    response = staff_client.get(EVENTS, query)
    # then
    assert_invalid(response, field)


# Event feed (NDJSON)


def test_ndjson_is_one_json_object_per_line(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 3)
    as_json = staff_client.get(EVENTS).json()
    # when
    response = staff_client.get(EVENTS, HTTP_ACCEPT="application/x-ndjson")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert ndjson(response) == as_json


def test_ndjson_honours_after_and_limit(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 5)
    everything = staff_client.get(EVENTS).json()
    # when
    response = staff_client.get(
        EVENTS,
        {"after": everything[0]["position"], "limit": 2},
        HTTP_ACCEPT="application/x-ndjson",
    )
    # then
    assert ndjson(response) == everything[1:3]
    assert "Link" in response


def test_a_bad_parameter_with_ndjson_accepted_is_still_a_400_problem(
    staff_client,
) -> None:
    # when
    response = staff_client.get(
        EVENTS, {"after": "x"}, HTTP_ACCEPT="application/x-ndjson"
    )
    # then
    assert_problem(response, 400)


def test_an_accept_header_naming_no_served_format_is_a_406_problem(
    staff_client,
) -> None:
    # when
    response = staff_client.get(EVENTS, HTTP_ACCEPT="text/csv")
    # then
    assert_problem(response, 406)
