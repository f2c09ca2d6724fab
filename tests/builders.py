"""Builders of requests, payouts and their histories, and the actors tests act as.

Plain functions and constants, imported by name by test modules and conftest files.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from api.schema import BANK_ACCOUNT_EXAMPLE
from ledger.application import NewPayout
from ledger.payout import Actor
from webhooks import services
from workers.gateway.fakeserver import DEGRADED, FLAKY, HOLD, OUTCOMES, PENDING

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import CreateOutcome, Payouts
    from webhooks.models import WebhookEndpoint

# Actors

TEST_ACTOR = Actor("user", "tester", "req-1")
"""A staff user's request: creates and cancels payouts."""
WORKER = Actor("worker", "w1:42", "task-9")
"""A worker's task: starts, completes and fails payouts."""
SEEDER = Actor("user", "seeder")
"""Whoever put the payouts an API test reads into the ledger."""


# Request bodies


def card_payout(number: str = "4242424242424242", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": "1500.00",
        "currency": "EUR",
        "recipient_details": {
            "type": "card",
            "number": number,
            "holder": "Ada Lovelace",
        },
        "description": "Invoice 118",
    }
    body.update(overrides)
    return body


def bank_payout(**overrides: Any) -> dict[str, Any]:
    # A copy: a test that changes its body must not change the documented example.
    body = copy.deepcopy(BANK_ACCOUNT_EXAMPLE)
    body.update(overrides)
    return body


def new_payout(**overrides: Any) -> NewPayout:
    body = card_payout(**overrides)
    return NewPayout(
        amount=body["amount"],
        currency=body["currency"],
        recipient=body["recipient_details"],
        description=body["description"],
    )


# Payouts and histories in a ledger


def create(ledger: Payouts, **overrides: Any) -> UUID:
    """A pending card payout (`overrides` as for card_payout), created by TEST_ACTOR."""
    return ledger.create_payout(new_payout(**overrides), actor=TEST_ACTOR).payout.id


def create_keyed(
    ledger: Payouts, fingerprint: str = "fp", **overrides: Any
) -> CreateOutcome:
    """A create under one Idempotency-Key of one caller, as a client sends it again;
    `overrides` as for card_payout."""
    return ledger.create_payout(
        new_payout(**overrides),
        actor=TEST_ACTOR,
        scope="7",
        idempotency_key="k1",
        request_fingerprint=fingerprint,
    )


def make_histories(ledger: Payouts) -> list[UUID]:
    """Given: payouts in every status."""
    pending = create(ledger)
    processing = create(ledger, amount="10.00")
    completed = create(ledger, currency="USD")
    failed = create(ledger, amount="0.01")
    cancelled = create(ledger)
    bank = ledger.create_payout(new_payout(**bank_payout()), actor=TEST_ACTOR).payout.id
    for payout_id in (processing, completed, failed):
        ledger.start_processing(payout_id, actor=WORKER)
    ledger.complete(completed, gateway_reference="ch_1", actor=WORKER)
    ledger.fail(failed, code="card_declined", message="Declined.", actor=WORKER)
    ledger.cancel(cancelled, reason="asked", actor=TEST_ACTOR)
    return [pending, processing, completed, failed, cancelled, bank]


def paid_payout(ledger: Payouts, number: str = "4242424242424242") -> UUID:
    """A payout with three events: created, processing, completed."""
    payout_id = ledger.create_payout(
        new_payout(number=number), actor=TEST_ACTOR
    ).payout.id
    ledger.start_processing(payout_id, actor=TEST_ACTOR)
    ledger.complete(payout_id, gateway_reference="ref-1", actor=TEST_ACTOR)
    return payout_id


# Webhook endpoints


def make_endpoint(
    url: str, types: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    return services.endpoint_create(
        url=url,
        event_types=types
        or [
            "payout.created",
            "payout.processing",
            "payout.completed",
            "payout.failed",
            "payout.cancelled",
        ],
    )


# The fake gateway's test cards (SPEC.md)


def _settling_at_once(*numbers: str) -> list[str]:
    """These numbers, checked to be test cards whose first charge request settles."""
    delayed = {*FLAKY, *HOLD, *PENDING, *DEGRADED}
    wrong = [n for n in numbers if n not in OUTCOMES or n in delayed]
    if wrong:
        raise ValueError(f"not test cards that settle at once: {wrong}")
    return list(numbers)


SETTLING_CARDS = _settling_at_once(
    "4242424242424242", "4000000000000002", "4111111111111111"
)
"""Paid, declined, paid: each settles at the first charge request."""
