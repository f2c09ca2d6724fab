"""GET /api/v1/payouts/: filters, ordering and cursor pagination over the projection."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.api.support import (
    PAYOUTS,
    assert_invalid,
    detail_url,
    listed_ids,
    post_payout,
    seed_payouts,
)
from tests.builders import bank_payout, card_payout


def cursor_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["cursor"][0]


def forged_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.fixture
def three(staff_client, clock, project) -> list[str]:
    """Created in this order at t1, t2, t3; the second is cancelled at t4.

    created_at: a, b, c  ·  amount: b (5), c (12.50), a (20)  ·  updated_at: a, c, b
    """
    a = post_payout(staff_client, card_payout(amount="20.00")).json()["id"]
    b = post_payout(staff_client, bank_payout(amount="5")).json()["id"]
    c = post_payout(staff_client, card_payout(amount="12.50")).json()["id"]
    staff_client.delete(detail_url(b))
    project()
    return [a, b, c]


def test_the_list_is_newest_first_by_default(staff_client, three) -> None:
    # given
    a, b, c = three
    # when
    response = staff_client.get(PAYOUTS)
    # then
    assert response.status_code == 200
    assert listed_ids(response) == [c, b, a]


def test_the_list_shows_payouts_as_the_projection_has_them(staff_client, three) -> None:
    # given
    _, cancelled, _ = three
    # when
    rows = {p["id"]: p for p in staff_client.get(PAYOUTS).json()["results"]}
    # then
    assert rows[cancelled]["status"] == "cancelled"
    assert rows[cancelled]["version"] == 2
    assert rows[cancelled]["amount"] == "5"


def test_a_single_page_has_no_next_and_no_previous(staff_client, three) -> None:
    # when
    page = staff_client.get(PAYOUTS).json()
    # then
    assert page["next"] is None
    assert page["previous"] is None


# Filters


def test_status_filters_on_one_status(staff_client, three) -> None:
    # given
    _, cancelled, _ = three
    # when
    response = staff_client.get(PAYOUTS, {"status": "cancelled"})
    # then
    assert listed_ids(response) == [cancelled]


def test_status_repeated_filters_on_several_statuses(
    staff_client, three, move_to, project
) -> None:
    # given
    a, b, _ = three
    move_to(a, "processing")
    project()
    # when
    response = staff_client.get(f"{PAYOUTS}?status=processing&status=cancelled")
    # then
    assert set(listed_ids(response)) == {a, b}


def test_status_as_a_comma_list_filters_on_several_statuses(
    staff_client, three, move_to, project
) -> None:
    # given
    a, b, _ = three
    move_to(a, "processing")
    project()
    # when
    response = staff_client.get(PAYOUTS, {"status": "processing,cancelled"})
    # then
    assert set(listed_ids(response)) == {a, b}


def test_currency_filters_on_the_currency(staff_client, three) -> None:
    # given
    _, jpy, _ = three
    # when
    response = staff_client.get(PAYOUTS, {"currency": "JPY"})
    # then
    assert listed_ids(response) == [jpy]


def test_the_currency_filter_ignores_case(staff_client, three) -> None:
    # given
    _, jpy, _ = three
    # when
    response = staff_client.get(PAYOUTS, {"currency": "jpy"})
    # then
    assert listed_ids(response) == [jpy]


def test_created_after_is_inclusive(staff_client, three) -> None:
    # given
    _, b, c = three
    created_b = staff_client.get(detail_url(b), {"version": 1}).json()["created_at"]
    # when
    response = staff_client.get(PAYOUTS, {"created_after": created_b})
    # then
    assert listed_ids(response) == [c, b]


def test_created_before_is_inclusive(staff_client, three) -> None:
    # given
    a, b, _ = three
    created_b = staff_client.get(detail_url(b), {"version": 1}).json()["created_at"]
    # when
    response = staff_client.get(PAYOUTS, {"created_before": created_b})
    # then
    assert listed_ids(response) == [b, a]


def test_created_after_accepts_an_offset_other_than_utc(staff_client, three) -> None:
    # given
    _, b, c = three
    # b was created at 09:00:02Z, which is 11:00:02+02:00
    # when
    response = staff_client.get(
        f"{PAYOUTS}?created_after={quote('2026-03-02T11:00:02+02:00')}"
    )
    # then
    assert listed_ids(response) == [c, b]


def test_amount_min_is_inclusive(staff_client, three) -> None:
    # given
    a, _, c = three
    # when
    response = staff_client.get(PAYOUTS, {"amount_min": "12.50"})
    # then
    assert listed_ids(response) == [c, a]


def test_amount_max_is_inclusive(staff_client, three) -> None:
    # given
    _, b, c = three
    # when
    response = staff_client.get(PAYOUTS, {"amount_max": "12.5"})
    # then
    assert listed_ids(response) == [c, b]


def test_filters_combine_with_and(staff_client, three) -> None:
    # given
    a, _, _ = three
    # when
    response = staff_client.get(
        PAYOUTS, {"currency": "EUR", "amount_min": "15", "status": "pending"}
    )
    # then
    assert listed_ids(response) == [a]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("status=pending,bogus", "status"),
        ("status=PENDING", "status"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2026-13-01T00:00:00Z", "created_after"),
        ("created_after=0001-01-01T00:00:00%2B01:00", "created_after"),
        ("created_before=9999-12-31T23:59:59-01:00", "created_before"),
        ("created_before=2026-02-30", "created_before"),
        ("amount_min=abc", "amount_min"),
        ("amount_min=NaN", "amount_min"),
        ("amount_max=Infinity", "amount_max"),
        ("amount_max=1e400", "amount_max"),
        ("currency=EURO", "currency"),
        ("currency=E1", "currency"),
    ],
)
def test_an_invalid_filter_value_is_a_400_naming_it(staff_client, query, field) -> None:
    # when
    response = staff_client.get(f"{PAYOUTS}?{query}")
    # then
    assert_invalid(response, field)


# Ordering


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("created_at", [0, 1, 2]),
        ("-created_at", [2, 1, 0]),
        ("amount", [1, 2, 0]),
        ("-amount", [0, 2, 1]),
        ("updated_at", [0, 2, 1]),
        ("-updated_at", [1, 2, 0]),
    ],
)
def test_ordering_sorts_by_each_field_both_ways(
    staff_client, three, ordering, expected
) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"ordering": ordering})
    # then
    assert listed_ids(response) == [three[i] for i in expected]


@pytest.mark.parametrize(
    "ordering", ["status", "id", "--amount", "amount-", "amount,created_at", "+amount"]
)
def test_an_invalid_ordering_is_a_400_naming_it(staff_client, three, ordering) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"ordering": ordering})
    # then
    assert_invalid(response, "ordering")


# Cursor pagination


def flat(pages: list[list[str]]) -> list[str]:
    return [payout_id for page in pages for payout_id in page]


def walk(client, url: str, key: str) -> list[list[str]]:
    pages = []
    while url:
        page = client.get(url).json()
        pages.append([p["id"] for p in page["results"]])
        url = page[key]
    return pages


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "amount", "-amount"])
def test_following_next_visits_every_payout_once_in_order(
    staff_client, ledger, project, ordering
) -> None:
    # given
    seed_payouts(ledger, 7)
    project()
    everything = listed_ids(staff_client.get(PAYOUTS, {"ordering": ordering}))
    # when
    pages = walk(staff_client, f"{PAYOUTS}?ordering={ordering}&limit=3", "next")
    # then
    assert [len(p) for p in pages] == [3, 3, 1]
    assert flat(pages) == everything


def test_following_previous_from_the_last_page_walks_back_the_same_pages(
    staff_client, ledger, project
) -> None:
    # given
    seed_payouts(ledger, 7)
    project()
    forward = walk(staff_client, f"{PAYOUTS}?limit=3", "next")
    last = staff_client.get(f"{PAYOUTS}?limit=3").json()
    while last["next"]:
        last = staff_client.get(last["next"]).json()
    # when
    backward = walk(staff_client, last["previous"], "previous")
    # then
    assert backward == list(reversed(forward[:-1]))


def test_next_after_previous_returns_to_the_page_left(
    staff_client, ledger, project
) -> None:
    # given
    seed_payouts(ledger, 7)
    project()
    first = staff_client.get(f"{PAYOUTS}?limit=3").json()
    second = staff_client.get(first["next"]).json()
    # when
    back = staff_client.get(second["previous"]).json()
    again = staff_client.get(back["next"]).json()
    # then
    assert back["results"] == first["results"]
    assert again["results"] == second["results"]


def test_the_first_page_has_no_previous_link(staff_client, ledger, project) -> None:
    # given
    seed_payouts(ledger, 4)
    project()
    # when
    page = staff_client.get(f"{PAYOUTS}?limit=3").json()
    # then
    assert page["previous"] is None
    assert page["next"] is not None


def test_payouts_created_while_paging_do_not_shift_the_pages(
    staff_client, ledger, project
) -> None:
    # given
    seed_payouts(ledger, 4)
    project()
    first = staff_client.get(f"{PAYOUTS}?limit=2").json()
    before = listed_ids(staff_client.get(PAYOUTS))
    seed_payouts(ledger, 3)
    project()
    # when
    rest = walk(staff_client, first["next"], "next")
    # then
    assert [p["id"] for p in first["results"]] + flat(rest) == before


def test_the_next_link_keeps_the_filters(
    staff_client, ledger, project, move_to
) -> None:
    # given
    seed_payouts(ledger, 5)
    project()
    cancelled = listed_ids(staff_client.get(PAYOUTS))[1]
    move_to(cancelled, "cancelled")
    project()
    # when
    pages = walk(staff_client, f"{PAYOUTS}?status=pending&limit=2", "next")
    # then
    assert [len(p) for p in pages] == [2, 2]
    assert cancelled not in flat(pages)


def test_ties_on_the_ordering_field_are_neither_skipped_nor_repeated(
    staff_client, ledger, project
) -> None:
    # given: seven payouts of the same amount
    seed_payouts(ledger, 7)
    project()
    # when
    pages = walk(staff_client, f"{PAYOUTS}?ordering=amount&limit=2", "next")
    # then
    seen = flat(pages)
    assert len(seen) == len(set(seen)) == 7


def test_the_default_page_size_is_50(staff_client, ledger, project) -> None:
    # given
    seed_payouts(ledger, 51)
    project()
    # when
    page = staff_client.get(PAYOUTS).json()
    # then
    assert len(page["results"]) == 50
    assert page["next"] is not None


def test_a_limit_of_200_returns_200_payouts(staff_client, ledger, project) -> None:
    # given
    seed_payouts(ledger, 201)
    project()
    # when
    page = staff_client.get(PAYOUTS, {"limit": 200}).json()
    # then
    assert len(page["results"]) == 200
    assert page["next"] is not None


def test_a_limit_above_200_is_a_400_naming_it(staff_client) -> None:
    # when
    response = staff_client.get(PAYOUTS, {"limit": "201"})
    # then
    assert_invalid(response, "limit")


def test_a_cursor_from_another_ordering_is_a_400(staff_client, ledger, project) -> None:
    # given
    seed_payouts(ledger, 3)
    project()
    next_link = staff_client.get(PAYOUTS, {"limit": 1}).json()["next"]
    # when
    response = staff_client.get(
        PAYOUTS, {"ordering": "amount", "cursor": cursor_of(next_link)}
    )
    # then
    assert_invalid(response, "cursor")


@pytest.mark.parametrize(
    ("ordering", "cursor"),
    [
        ("-created_at", "not-a-cursor"),
        ("-created_at", "!!!"),
        ("-created_at", forged_cursor("-created_at", "x")),
        ("-created_at", forged_cursor("-created_at", "yesterday", "x", True)),
        (
            "-created_at",
            forged_cursor(
                "-created_at",
                "2026-03-02T09:00:00+00:00",
                "not-a-uuid",
                True,
            ),
        ),
        (
            "-created_at",
            forged_cursor(
                "-created_at",
                "2026-03-02T09:00:00",
                "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1",
                True,
            ),
        ),
        (
            "-created_at",
            forged_cursor(
                "-created_at",
                "0001-01-01T00:00:00+01:00",
                "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1",
                True,
            ),
        ),
        (
            "amount",
            forged_cursor(
                "amount", "lots", "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1", True
            ),
        ),
        (
            "amount",
            forged_cursor(
                "amount", "NaN", "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1", True
            ),
        ),
        (
            "amount",
            forged_cursor(
                "amount", "1e999999", "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1", True
            ),
        ),
    ],
)
def test_a_malformed_or_tampered_cursor_is_a_400(
    staff_client, ledger, project, ordering, cursor
) -> None:
    # given
    seed_payouts(ledger, 1)
    project()
    # when
    response = staff_client.get(PAYOUTS, {"ordering": ordering, "cursor": cursor})
    # then
    assert_invalid(response, "cursor")
