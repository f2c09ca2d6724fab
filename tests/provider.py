"""The bundled fake provider served in this process on a free loopback port, and the
orders the integration tests send it. Tests hold its Ledger, so they can wait for
what the provider is doing (a request held, a hold ended) instead of sleeping."""

from __future__ import annotations

import contextlib
import threading
import uuid
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx

from ledger.application import PaymentOrder
from ledger.values import card_recipient
from workers.gateway.fakeserver import Ledger, make_handler

if TYPE_CHECKING:
    from collections.abc import Iterator

VISA = "4242424242424242"


@contextlib.contextmanager
def serving(latency_ms: float = 0.0) -> Iterator[tuple[str, Ledger]]:
    """The provider's base URL, and what it remembers."""
    ledger = Ledger()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), make_handler(ledger, latency_ms / 1000)
    )
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ledger
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def start_server(latency_ms: float = 0.0) -> Iterator[str]:
    """For fixtures that need only the URL."""
    with serving(latency_ms) as (url, _):
        yield url


def card_order(number: str = VISA, amount: str = "1500.00") -> PaymentOrder:
    return PaymentOrder(
        payout_id=uuid.uuid4(),
        amount=Decimal(amount),
        currency="EUR",
        recipient=card_recipient(number, "Ada Lovelace"),
        status="processing",
    )


def charges_for(provider_url: str, order: PaymentOrder) -> list[dict[str, Any]]:
    listed = httpx.get(f"{provider_url}/charges").json()
    return [c for c in listed if c["payout_id"] == str(order.payout_id)]
