"""Every test card of SPEC.md through the supervised stack on PostgreSQL and Redis:
each payout ends as the table says, with exactly one charge when completed and none,
ever, when failed (the provider's charges are read again once every request it may
still hold has ended). The shared stack's fake gateway runs at GATEWAY_TIME_SCALE=0.1
(holds of 1.5 s, settling after 1 s, degraded for 20 s) against an adapter that reads
for 0.8 s, so each card meets the same timeouts as at full scale, ten times faster."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tools.stack import wait_for
from workers.gateway.fakeserver import DEGRADED, DEGRADED_HOLD, HOLD, OUTCOMES

if TYPE_CHECKING:
    from tools.stack import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

IBAN = "DE89370400440532013000"
FINAL = ("completed", "failed", "cancelled")


def test_every_test_card_ends_as_spec_says_with_one_charge_or_none_ever(
    shared_stack: Stack,
) -> None:
    # given: one payout per test card, and one to an IBAN
    recipients: dict[str, dict[str, str]] = {
        number: {"type": "card", "number": number, "holder": "Card Holder"}
        for number in [*OUTCOMES, *DEGRADED]
    }
    recipients["iban"] = {"type": "bank_account", "iban": IBAN, "holder": "Iban Holder"}
    ids: dict[str, str] = {}
    with shared_stack.client() as client:
        for name, recipient in recipients.items():
            response = client.post(
                "/api/v1/payouts/",
                json={
                    "amount": "10.00",
                    "currency": "EUR",
                    "recipient_details": recipient,
                },
                headers={"Idempotency-Key": secrets.token_hex(8)},
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]

        # when: every payout has reached a final status
        def finals() -> dict[str, dict[str, Any]] | None:
            payouts = {
                n: client.get(f"/api/v1/payouts/{i}/").json() for n, i in ids.items()
            }
            done = all(p["status"] in FINAL for p in payouts.values())
            return payouts if done else None

        payouts = wait_for(finals, 180, "every test card's payout to be final", 1)
    # then: each as the table says
    outcome = {
        name: (p["status"], (p["failure_reason"] or {}).get("code"))
        for name, p in payouts.items()
    }
    for number, expected in OUTCOMES.items():
        assert outcome[number] == expected, number
    assert outcome["iban"] == ("completed", None)
    for number in DEGRADED:
        assert outcome[number] in (
            ("completed", None),
            ("failed", "gateway_unavailable"),
        )
    # and once any request the provider held has ended: one charge per completed
    # payout, none for a failed one
    scale = float(shared_stack.env["GATEWAY_TIME_SCALE"])
    time.sleep(max([*HOLD.values(), DEGRADED_HOLD]) * scale + 2)
    charges = httpx.get(f"{shared_stack.gateway_url}/charges").json()
    for name, payout_id in ids.items():
        count = sum(1 for c in charges if c["payout_id"] == payout_id)
        assert count == (1 if outcome[name][0] == "completed" else 0), name
    # and nothing is left in doubt
    ready = httpx.get(f"{shared_stack.web_url}/readyz").json()
    assert ready["checks"]["payouts"]["in_doubt"] == 0
