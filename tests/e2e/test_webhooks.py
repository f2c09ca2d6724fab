"""Webhooks through the real stack (supervisord, PostgreSQL, Redis) to a real receiver
process that verifies every signature with the standardwebhooks library: it fails its
first three deliveries, holds one past the read timeout, and is killed and started
again, as is the webhook process; every event still arrives, once after dedup, in
order per payout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.builders import SETTLING_CARDS
from tools.stack import Stack, free_port, wait_for
from tools.webhook_receiver import ReceiverProcess

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

TERMINAL = {"completed", "failed", "cancelled"}
OVERRIDES = {
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "WEBHOOK_RETRY_BASE": "0.2",
    "WEBHOOK_RETRY_MAX_DELAY": "1",
    "WEBHOOK_RETRY_WINDOW": "120",
    "WEBHOOK_READ_TIMEOUT": "1",
}


def body(index: int) -> dict[str, Any]:
    return {
        "amount": f"{10 + index}.00",
        "currency": "EUR",
        "recipient_details": {
            "type": "card",
            "number": SETTLING_CARDS[index % len(SETTLING_CARDS)],
            "holder": f"Holder {index}",
        },
    }


def test_every_event_arrives_signed_once_and_in_order_across_restarts(
    tmp_path: Path,
) -> None:
    receiver = ReceiverProcess(
        tmp_path / "receiver",
        free_port(),
        # Request 36 is held past the read timeout. Before the receiver's restart
        # there are at most 32 requests (29 events of payouts 0-8, 3 refused) and a
        # resend or two, and every run makes 38 or more: the held request comes after
        # the last kill, so its timeout is always recorded (request 6 could be cut
        # short by the kill of the webhook process, and then nothing was recorded).
        ("--fail-first", "3", "--hang-request", "36", "--hang-seconds", "2"),
    )
    receiver.start()
    try:
        with Stack.running(tmp_path / "stack", "wh", overrides=OVERRIDES) as stack:
            run(stack, receiver)
    finally:
        receiver.kill()


def deliveries(client: httpx.Client, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    return client.get(
        f"/api/v1/webhook_endpoints/{endpoint['id']}/deliveries/",
        params={"limit": 200},
    ).json()["results"]


def errors(client: httpx.Client, endpoint: dict[str, Any]) -> list[str]:
    """The error of every failed attempt at the endpoint so far."""
    found = deliveries(client, endpoint)
    return [a["error"] for d in found for a in d["attempts"] if a["error"]]


def run(stack: Stack, receiver: ReceiverProcess) -> None:
    with stack.client() as client:
        # given: an endpoint for every payout event
        response = client.post(
            "/api/v1/webhook_endpoints/",
            json={"url": receiver.url, "description": "e2e"},
        )
        assert response.status_code == 201, response.text
        endpoint = response.json()
        receiver.use_secret(endpoint["secret"])
        # when: payouts are made while the webhook process and the receiver die
        ids = [
            client.post("/api/v1/payouts/", json=body(i)).json()["id"] for i in range(6)
        ]
        cancelled = client.post("/api/v1/payouts/", json=body(99)).json()["id"]
        client.delete(f"/api/v1/payouts/{cancelled}/")
        ids.append(cancelled)
        old = stack.pid("webhooks")
        offset = stack._log_size("webhooks")
        stack.kill("webhooks")
        ids += [
            client.post("/api/v1/payouts/", json=body(i)).json()["id"]
            for i in range(6, 9)
        ]
        stack.wait_restarted("webhooks", old, offset)
        receiver.kill()
        ids += [
            client.post("/api/v1/payouts/", json=body(i)).json()["id"]
            for i in range(9, 12)
        ]
        wait_for(
            lambda: any(e.startswith("ConnectError") for e in errors(client, endpoint)),
            30,
            "a delivery refused while the receiver is down",
            interval=0.2,
        )
        receiver.start()

        def histories() -> dict[str, list[int]] | None:
            found = {}
            for payout_id in ids:
                payout = client.get(f"/api/v1/payouts/{payout_id}/").json()
                if payout["status"] not in TERMINAL:
                    return None
                found[payout_id] = list(range(1, payout["version"] + 1))
            return found

        expected = wait_for(histories, 90, "every payout to settle", interval=0.5)

        def delivered() -> bool:
            got = {(a["payout_id"], a["version"]) for a in receiver.state()["accepted"]}
            return got == {(p, v) for p, vs in expected.items() for v in vs}

        wait_for(delivered, 90, "every event at the receiver", interval=0.5)
        # then
        state = receiver.state()
        assert state["counters"]["bad_signatures"] == 0
        assert state["counters"]["out_of_order"] == []
        assert state["counters"]["failed"] == 3
        for payout_id, versions in expected.items():
            arrived = [
                a["version"] for a in state["accepted"] if a["payout_id"] == payout_id
            ]
            assert arrived == versions, payout_id
        assert {d["status"] for d in deliveries(client, endpoint)} == {"succeeded"}
        failures = errors(client, endpoint)
        assert any(e.startswith("timeout") for e in failures)
        # Each 500 the receiver gave is recorded, but for one whose attempt was cut
        # short by the kill of the webhook process (sent again after the restart).
        assert 2 <= sum(e == "HTTP 500" for e in failures) <= 3
        metrics = client.get("/metrics").text
        assert "webhook_deliveries" in metrics
        assert not any(c.encode() in stack.logs() for c in SETTLING_CARDS)
