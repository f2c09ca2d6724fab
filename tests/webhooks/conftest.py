"""Webhook fixtures: endpoints, payouts with histories, and a real receiver process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import TEST_ACTOR, new_payout
from tools.stack import free_port
from tools.webhook_receiver import ReceiverProcess
from webhooks import services

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from uuid import UUID

    from ledger.application import Payouts
    from webhooks.models import WebhookEndpoint


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    started: list[ReceiverProcess] = []

    def start(*options: str) -> ReceiverProcess:
        receiver = ReceiverProcess(
            tmp_path / f"receiver{len(started)}", free_port(), options
        )
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.kill()


@pytest.fixture
def allow_loopback(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_RETRY_BASE = 0.05
    settings.WEBHOOK_RETRY_MAX_DELAY = 0.2
    settings.WEBHOOK_READ_TIMEOUT = 1.0
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0
    return settings


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


def paid_payout(ledger: Payouts, number: str = "4242424242424242") -> UUID:
    """A payout with three events: created, processing, completed."""
    payout_id = ledger.create_payout(
        new_payout(number=number), actor=TEST_ACTOR
    ).payout.id
    ledger.start_processing(payout_id, actor=TEST_ACTOR)
    ledger.complete(payout_id, gateway_reference="ref-1", actor=TEST_ACTOR)
    return payout_id
