"""Auditors: the list ?as_of= an instant, ?version/?as_of against the history, and the
event feed streamed whole (NDJSON `limit=all`) or paged while payouts are written."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

import pytest

from tests.api.support import (
    EVENTS,
    PAYOUTS,
    assert_invalid,
    detail_url,
    history_url,
    listed_ids,
    ndjson,
    post_payout,
    seed_payouts,
)
from tests.builders import bank_payout, card_payout

NDJSON = "application/x-ndjson"


def follow(client, url: str, key: str = "next") -> list[dict]:
    """Every page from `url` on, following `key` links; the pages, in order."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.json())
        url = response.json()[key]
    return pages


@pytest.fixture
def lifecycle(staff_client, clock, move_to, project) -> dict[str, str]:
    """`done`: created 09:00:01, processing 09:00:02, completed 09:00:03.
    `later`: created 09:00:04, still pending."""
    done = post_payout(staff_client).json()["id"]
    move_to(done, "completed")
    later = post_payout(staff_client, bank_payout()).json()["id"]
    project()
    return {"done": done, "later": later}


# GET payouts/?as_of=


@pytest.mark.parametrize(
    ("as_of", "status", "version", "updated_at"),
    [
        ("2026-03-02T09:00:01Z", "pending", 1, "2026-03-02T09:00:01Z"),
        ("2026-03-02T09:00:02.5Z", "processing", 2, "2026-03-02T09:00:02Z"),
        ("2026-03-02T09:00:03Z", "completed", 3, "2026-03-02T09:00:03Z"),
        ("2026-03-02T10:00:02.5+01:00", "processing", 2, "2026-03-02T09:00:02Z"),
    ],
)
def test_the_list_as_of_an_instant_shows_each_payout_as_it_was_then(
    staff_client, lifecycle, as_of, status, version, updated_at
) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"as_of": as_of})
    # then
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == lifecycle["done"]
    assert (row["status"], row["version"]) == (status, version)
    assert row["updated_at"] == updated_at


def test_the_list_without_as_of_still_shows_the_current_state(
    staff_client, lifecycle
) -> None:
    # when
    rows = staff_client.get(PAYOUTS).json()["results"]
    # then
    assert {r["id"]: r["status"] for r in rows} == {
        lifecycle["done"]: "completed",
        lifecycle["later"]: "pending",
    }


def test_a_payout_created_after_as_of_is_absent(staff_client, lifecycle) -> None:
    # when
    before = staff_client.get(PAYOUTS, {"as_of": "2026-03-02T09:00:03.999999Z"})
    at = staff_client.get(PAYOUTS, {"as_of": "2026-03-02T09:00:04Z"})
    # then
    assert listed_ids(before) == [lifecycle["done"]]
    assert listed_ids(at) == [lifecycle["later"], lifecycle["done"]]


def test_before_the_first_payout_the_list_is_empty(staff_client, lifecycle) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"as_of": "2026-03-02T09:00:00Z"})
    # then
    assert response.json() == {"next": None, "previous": None, "results": []}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("processing", ["done"]),
        ("completed", []),
        ("pending", []),
        ("pending,processing", ["done"]),
    ],
)
def test_the_status_filter_applies_to_the_replayed_status(
    staff_client, lifecycle, status, expected
) -> None:
    # when
    response = staff_client.get(
        PAYOUTS, {"as_of": "2026-03-02T09:00:02.5Z", "status": status}
    )
    # then
    assert listed_ids(response) == [lifecycle[name] for name in expected]


def test_the_other_filters_apply_with_as_of(staff_client, lifecycle) -> None:
    # given
    as_of = "2026-03-02T09:00:10Z"
    # when
    jpy = staff_client.get(PAYOUTS, {"as_of": as_of, "currency": "JPY"})
    big = staff_client.get(PAYOUTS, {"as_of": as_of, "amount_min": "100000"})
    early = staff_client.get(
        PAYOUTS, {"as_of": as_of, "created_before": "2026-03-02T09:00:03Z"}
    )
    # then
    assert listed_ids(jpy) == [lifecycle["later"]]
    assert listed_ids(big) == [lifecycle["later"]]
    assert listed_ids(early) == [lifecycle["done"]]


def test_as_of_orders_by_amount(staff_client, lifecycle) -> None:
    # when
    response = staff_client.get(
        PAYOUTS, {"as_of": "2026-03-02T09:00:10Z", "ordering": "amount"}
    )
    # then
    assert listed_ids(response) == [lifecycle["done"], lifecycle["later"]]


@pytest.mark.parametrize("ordering", ["updated_at", "-updated_at"])
def test_ordering_on_updated_at_with_as_of_is_a_400(
    staff_client, lifecycle, ordering
) -> None:
    # when
    response = staff_client.get(
        PAYOUTS, {"as_of": "2026-03-02T09:00:10Z", "ordering": ordering}
    )
    # then
    assert_invalid(response, "ordering")


def test_an_as_of_that_is_not_an_rfc3339_instant_is_a_400(staff_client) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"as_of": "2026-03-02T09:00:00"})
    # then
    assert_invalid(response, "as_of")


def test_a_bad_status_with_as_of_is_still_a_400_naming_it(
    staff_client, lifecycle
) -> None:
    # when
    response = staff_client.get(
        PAYOUTS, {"as_of": "2026-03-02T09:00:10Z", "status": "paid"}
    )
    # then
    assert_invalid(response, "status")


def test_auditors_can_list_as_of(auditor_client, lifecycle) -> None:
    # when
    response = auditor_client.get(PAYOUTS, {"as_of": "2026-03-02T09:00:10Z"})
    # then
    assert response.status_code == 200


@pytest.fixture
def sparse(staff_client, clock, move_to, project, settings) -> list[str]:
    """Ten payouts created a second apart from 09:00:01; the 2nd, 5th, 6th and 9th
    are moved to processing at 09:00:11-14. The scan limit is 3."""
    created = [post_payout(staff_client).json()["id"] for _ in range(10)]
    moved = [created[i] for i in (1, 4, 5, 8)]
    for payout_id in moved:
        move_to(payout_id, "processing")
    project()
    settings.AS_OF_SCAN_LIMIT = 3
    return moved


def test_the_scan_limit_shortens_pages_and_next_continues_where_it_stopped(
    staff_client, sparse
) -> None:
    # given
    query = "as_of=2026-03-02T09:00:20Z&status=processing&ordering=created_at&limit=2"
    # when
    pages = follow(staff_client, f"{PAYOUTS}?{query}")
    # then
    seen = [p["id"] for page in pages for p in page["results"]]
    assert seen == sparse
    assert any(len(page["results"]) < 2 for page in pages[:-1])
    assert len(pages) > 2


def test_previous_links_walk_back_over_the_same_payouts(staff_client, sparse) -> None:
    # given
    query = "as_of=2026-03-02T09:00:20Z&status=processing&limit=2"
    last = follow(staff_client, f"{PAYOUTS}?{query}")[-1]
    # when
    pages = follow(staff_client, last["previous"], key="previous")
    # then
    seen = [p["id"] for page in reversed(pages) for p in page["results"]]
    seen += [p["id"] for p in last["results"]]
    assert seen == list(reversed(sparse))


def test_as_of_before_the_moves_finds_none_processing_through_every_page(
    staff_client, sparse
) -> None:
    # given
    query = "as_of=2026-03-02T09:00:10Z&status=processing"
    # when
    pages = follow(staff_client, f"{PAYOUTS}?{query}")
    # then
    assert [p for page in pages for p in page["results"]] == []
    assert len(pages) == 4  # 10 candidates, 3 replayed per request


def test_without_a_status_filter_a_page_needs_no_more_than_its_rows(
    staff_client, sparse
) -> None:
    # when
    pages = follow(staff_client, f"{PAYOUTS}?as_of=2026-03-02T09:00:20Z&limit=2")
    # then
    assert [len(page["results"]) for page in pages] == [2, 2, 2, 2, 2]


# ?version= and ?as_of= on the detail endpoint, against the history


@pytest.fixture
def sample(staff_client, clock, move_to, project) -> list[str]:
    """Payouts in every final state and one still pending, events interleaved."""
    payouts = [
        post_payout(staff_client, card_payout(amount="10.00")).json()["id"],
        post_payout(staff_client, bank_payout()).json()["id"],
        post_payout(staff_client, card_payout(amount="7.25")).json()["id"],
        post_payout(staff_client).json()["id"],
    ]
    for payout_id, status in zip(
        payouts, ["completed", "failed", "cancelled", "pending"], strict=True
    ):
        move_to(payout_id, status)
    project()
    return payouts


def test_version_and_as_of_agree_with_the_history_for_every_version(
    staff_client, sample
) -> None:
    for payout_id in sample:
        history = staff_client.get(history_url(payout_id)).json()
        for entry in history:
            # when
            by_version = staff_client.get(
                detail_url(payout_id), {"version": entry["version"]}
            )
            by_instant = staff_client.get(
                detail_url(payout_id), {"as_of": entry["occurred_at"]}
            )
            # then
            assert by_version.status_code == by_instant.status_code == 200
            assert by_version.json() == by_instant.json()
            assert by_version.json()["version"] == entry["version"]
            assert by_version.json()["updated_at"] == entry["occurred_at"]
            assert by_version["ETag"] == f'"{entry["version"]}"'


def test_the_list_as_of_each_event_agrees_with_the_detail_as_of_it(
    staff_client, sample
) -> None:
    # given
    instants = sorted(
        {
            entry["occurred_at"]
            for payout_id in sample
            for entry in staff_client.get(history_url(payout_id)).json()
        }
    )
    for as_of in instants:
        # when
        rows = staff_client.get(PAYOUTS, {"as_of": as_of}).json()["results"]
        # then
        assert rows
        for row in rows:
            assert (
                row == staff_client.get(detail_url(row["id"]), {"as_of": as_of}).json()
            )


# GET events/?limit=all (NDJSON)


@pytest.fixture
def small_batches(settings, ledger, monkeypatch) -> list[int]:
    """A batch of 3 events; the limits the store was asked for, one per read."""
    settings.EVENT_FEED_BATCH = 3
    asked: list[int] = []
    select = ledger.recorder.select_notifications

    def spy(*args, **kwargs):
        asked.append(kwargs["limit"])
        return select(*args, **kwargs)

    monkeypatch.setattr(ledger.recorder, "select_notifications", spy)
    return asked


def test_limit_all_streams_every_event_once_in_order_across_batches(
    staff_client, ledger, small_batches
) -> None:
    # given
    seed_payouts(ledger, 10)
    everything = staff_client.get(EVENTS).json()
    small_batches.clear()
    # when
    response = staff_client.get(EVENTS, {"limit": "all"}, HTTP_ACCEPT=NDJSON)
    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith(NDJSON)
    assert "Link" not in response
    streamed = ndjson(response)
    assert streamed == everything
    assert len(streamed) == 10
    assert small_batches == [3, 3, 3, 3]


def test_limit_all_reads_the_store_only_as_the_stream_is_consumed(
    staff_client, ledger, small_batches
) -> None:
    # given
    seed_payouts(ledger, 10)
    # when
    response = staff_client.get(EVENTS, {"limit": "all"}, HTTP_ACCEPT=NDJSON)
    chunks = iter(response.streaming_content)
    first = next(chunks)
    # then
    assert len(first.splitlines()) == 3
    assert small_batches == [3]
    assert len(list(chunks)) == 3


def test_limit_all_starts_after_the_given_position(
    staff_client, ledger, small_batches
) -> None:
    # given
    seed_payouts(ledger, 7)
    everything = staff_client.get(EVENTS).json()
    # when
    response = staff_client.get(
        EVENTS,
        {"limit": "all", "after": everything[1]["position"]},
        HTTP_ACCEPT=NDJSON,
    )
    # then
    assert ndjson(response) == everything[2:]


def test_limit_all_after_the_last_event_is_an_empty_stream(
    staff_client, ledger, small_batches
) -> None:
    # given
    seed_payouts(ledger, 2)
    last = staff_client.get(EVENTS).json()[-1]["position"]
    # when
    response = staff_client.get(
        EVENTS, {"limit": "all", "after": last}, HTTP_ACCEPT=NDJSON
    )
    # then
    assert response.status_code == 200
    assert ndjson(response) == []


def test_limit_all_streams_more_than_the_json_maximum(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 1001)
    # when
    response = staff_client.get(EVENTS, {"limit": "all"}, HTTP_ACCEPT=NDJSON)
    # then
    positions = [e["position"] for e in ndjson(response)]
    assert len(positions) == 1001
    assert positions == sorted(set(positions))


def test_ndjson_keeps_the_default_limit_of_100(staff_client, ledger) -> None:
    # given
    seed_payouts(ledger, 101)
    # when
    response = staff_client.get(EVENTS, HTTP_ACCEPT=NDJSON)
    # then
    assert len(ndjson(response)) == 100
    assert 'rel="next"' in response["Link"]


def test_limit_all_with_json_is_a_400_naming_limit(staff_client, ledger) -> None:
    # when
    response = staff_client.get(EVENTS, {"limit": "all"})
    # then
    assert_invalid(response, "limit")


# Paging the feed while payouts are written


def test_paging_after_the_last_position_while_writers_write_misses_and_repeats_nothing(
    staff_client, ledger
) -> None:
    # given
    writers, each = 3, 15
    failures: list[Exception] = []

    def write() -> None:
        try:
            for _ in range(each):
                seed_payouts(ledger, 1)
                time.sleep(0.002)
        except Exception as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    # when
    seen: list[dict] = []
    after, deadline, reads_while_writing = 0, time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        finished = not any(t.is_alive() for t in threads)  # before the read
        page = staff_client.get(EVENTS, {"after": after, "limit": 4}).json()
        reads_while_writing += not finished
        seen += page
        if page:
            after = page[-1]["position"]
        elif finished:
            break
        else:
            time.sleep(0.005)
    for thread in threads:
        thread.join()
    # then
    assert failures == []
    assert reads_while_writing > 1
    final = staff_client.get(EVENTS, {"limit": 1000}).json()
    assert len(final) == writers * each
    assert seen == final
    positions = [e["position"] for e in seen]
    assert all(a < b for a, b in pairwise(positions))
