"""The real processes on PostgreSQL and Redis (the stack the e2e tests share): 50
payouts across the SPEC's test cards."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tools.stack import wait_for
from workers.gateway.fakeserver import OUTCOMES

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    from tools.stack import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

# card number -> (final status, failure code)
CARDS = {
    number: OUTCOMES[number]
    for number in (
        "4242424242424242",
        "4111111111111111",
        "4000000000000002",
        "4000000000009995",
        "4000000000000119",
    )
}
IBAN = "DE89370400440532013000"
FULL_NUMBERS = [n.encode() for n in CARDS]
TERMINAL = {"completed", "failed", "cancelled"}


def payout_body(index: int) -> dict[str, Any]:
    numbers = list(CARDS)
    if index % 6 == 5:
        recipient = {"type": "bank_account", "iban": IBAN, "holder": f"Holder {index}"}
        currency = "EUR"
    else:
        recipient = {
            "type": "card",
            "number": numbers[index % 6 % len(numbers)],
            "holder": f"Holder {index}",
        }
        currency = ("EUR", "USD", "JPY")[index % 3]
    amount = f"{10 + index}" if currency == "JPY" else f"{10 + index}.25"
    return {"amount": amount, "currency": currency, "recipient_details": recipient}


def expected_outcome(body: dict[str, Any]) -> tuple[str, str | None]:
    if body["recipient_details"]["type"] == "bank_account":
        return "completed", None
    return CARDS[body["recipient_details"]["number"]]


def listed(
    client: httpx.Client, ids: Collection[str], **params: str
) -> list[dict[str, Any]]:
    """The payouts of `ids` in the list's first page (of 200: the shared stack holds
    fewer), filtered by `params`: other tests' payouts share the stack."""
    page = client.get("/api/v1/payouts/", params={"limit": "200", **params}).json()
    return [p for p in page["results"] if p["id"] in ids]


@pytest.fixture(scope="module")
def settled(shared_stack: Stack) -> dict[str, Any]:
    """Create 50 payouts through the API and wait for every one to reach a final status."""
    created: dict[str, dict[str, Any]] = {}
    with shared_stack.client() as client:
        for index in range(50):
            body = payout_body(index)
            response = client.post("/api/v1/payouts/", json=body)
            assert response.status_code == 201, response.text
            created[response.json()["id"]] = body

        def all_final() -> dict[str, Any] | None:
            finals = {}
            for payout_id in created:
                payout = client.get(f"/api/v1/payouts/{payout_id}/").json()
                if payout["status"] not in TERMINAL:
                    return None
                finals[payout_id] = payout
            return finals

        finals = wait_for(
            all_final, 120, "50 payouts to reach a final status", interval=0.5
        )

        # The projection catches up from the same log; wait for it too.
        def projected() -> bool:
            rows = listed(client, created)
            return len(rows) == 50 and all(p["status"] in TERMINAL for p in rows)

        wait_for(projected, 30, "the projection to show every final status")
    return {"bodies": created, "finals": finals}


def test_every_payout_reaches_the_status_its_test_card_promises(
    settled: dict[str, Any],
) -> None:
    for payout_id, body in settled["bodies"].items():
        status, code = expected_outcome(body)
        payout = settled["finals"][payout_id]
        assert payout["status"] == status, (payout_id, body["recipient_details"])
        assert (payout["failure_reason"] or {}).get("code") == code


def test_every_history_is_created_processing_then_its_outcome(
    shared_stack: Stack, settled: dict[str, Any]
) -> None:
    with shared_stack.client() as client:
        for payout_id, payout in settled["finals"].items():
            history = client.get(f"/api/v1/payouts/{payout_id}/history/").json()
            outcome = "Completed" if payout["status"] == "completed" else "Failed"
            assert [e["type"] for e in history] == [
                "Created",
                "ProcessingStarted",
                outcome,
            ]
            assert [e["version"] for e in history] == [1, 2, 3]
            assert history[0]["actor"]["type"] == "api_key"
            assert {e["actor"]["type"] for e in history[1:]} == {"worker"}


def test_the_list_filters_agree_with_the_final_statuses(
    shared_stack: Stack, settled: dict[str, Any]
) -> None:
    ids = settled["finals"]
    statuses = Counter(p["status"] for p in ids.values())
    with shared_stack.client() as client:
        for status, count in statuses.items():
            assert len(listed(client, ids, status=status)) == count
        assert len(listed(client, ids, status="completed,failed")) == 50
        jpy = listed(client, ids, currency="JPY")
        assert {p["currency"] for p in jpy} == {"JPY"}
        assert len(jpy) == sum(
            1 for b in settled["bodies"].values() if b["currency"] == "JPY"
        )
        by_amount = listed(client, ids, ordering="-amount")
        amounts = [float(p["amount"]) for p in by_amount]
        assert amounts == sorted(amounts, reverse=True)


def test_the_gateway_holds_exactly_one_charge_per_completed_payout(
    shared_stack: Stack, settled: dict[str, Any]
) -> None:
    ids = settled["finals"]
    charges = [
        c
        for c in httpx.get(f"{shared_stack.gateway_url}/charges").json()
        if c["payout_id"] in ids
    ]
    completed = {pid for pid, p in ids.items() if p["status"] == "completed"}
    charged = Counter(c["payout_id"] for c in charges)
    assert set(charged) == completed
    assert set(charged.values()) == {1}
    for charge in charges:
        assert charge["idempotency_key"] == charge["payout_id"]
        assert charge["amount"] == ids[charge["payout_id"]]["amount"]


def test_readiness_and_metrics_report_a_healthy_caught_up_service(
    shared_stack: Stack, settled: dict[str, Any]
) -> None:
    ready = httpx.get(f"{shared_stack.web_url}/readyz")
    metrics = httpx.get(f"{shared_stack.web_url}/metrics").text
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "broker", "projection", "payouts"}
    # every payout settled, none left in doubt or parked
    assert (checks["payouts"]["in_doubt"], checks["payouts"]["parked"]) == (0, 0)
    assert "payouts_in_doubt 0.0" in metrics
    assert re.search(r'^payouts\{status="completed"\} \d+', metrics, re.M)
    assert "payout_processing_seconds" in metrics
    assert "http_requests_total" in metrics


def test_no_full_card_number_appears_anywhere(
    shared_stack: Stack, settled: dict[str, Any], tmp_path: Path
) -> None:
    # given: every sink a card number could leak into
    with shared_stack.client() as client:
        api_bodies = [
            client.get("/api/v1/payouts/", params={"limit": 200}).content,
            client.get("/api/v1/events/", params={"limit": 1000}).content,
            client.get(
                "/api/v1/events/",
                params={"limit": 1000},
                headers={"Accept": "application/x-ndjson"},
            ).content,
            *(
                client.get(f"/api/v1/payouts/{pid}/").content
                for pid in settled["finals"]
            ),
            *(
                client.get(f"/api/v1/payouts/{pid}/history/").content
                for pid in settled["finals"]
            ),
        ]
    admin_pages = admin_html(shared_stack, list(settled["finals"])[:5])
    projection = b"".join(
        repr(row).encode()
        for row in shared_stack.sql("SELECT * FROM projections_payoutview")
    )
    raw_events = b"".join(
        bytes(row[0])
        for row in shared_stack.sql("SELECT state FROM eventstore.payouts_events")
    )
    sinks = {
        "api": b"".join(api_bodies),
        "admin": b"".join(admin_pages),
        "projection": projection,
        "event table": raw_events,
        "logs": shared_stack.logs(),
    }
    # then: the masked forms are there, the full numbers nowhere
    assert b"424242******4242" in sinks["api"]
    assert b"424242******4242" in sinks["projection"]
    assert len(raw_events) > 0
    for name, blob in sinks.items():
        for number in FULL_NUMBERS:
            assert number not in blob, f"full card number found in {name}"


def admin_html(stack: Stack, payout_ids: list[str]) -> list[bytes]:
    with httpx.Client(
        base_url=stack.web_url, follow_redirects=True, timeout=30
    ) as browser:
        login = browser.get("/admin/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', login.content)
        assert token, "no CSRF token on the admin login page"
        browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "admin",
                "password": stack.admin_password,
                "csrfmiddlewaretoken": token.group(1).decode(),
            },
            headers={"Referer": f"{stack.web_url}/admin/login/"},
        )
        pages = [browser.get("/admin/projections/payoutview/")]
        pages += [
            browser.get(f"/admin/projections/payoutview/{pid}/change/")
            for pid in payout_ids
        ]
    for page in pages:
        assert page.status_code == 200, page.url
    assert b"Event history" in pages[-1].content
    return [page.content for page in pages]
