"""Processing against the fake provider while it injects faults: one charge per payout.

The real fake server on a free loopback port, the real HTTP adapter with a short read
timeout, and `workers.processing.process` retried as Celery would retry it. Every
request the adapter puts on the wire is logged with its idempotency key and answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.builders import WORKER, create
from workers import processing
from workers.gateway.base import TransientGatewayError
from workers.gateway.fakeserver import serve
from workers.gateway.http import HttpGateway

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from ledger.application import Payouts

# The adapter gives up reading well before a "slow" answer arrives.
READ_TIMEOUT = 0.75
SLOW_SECONDS = 1.5


@dataclass
class Provider:
    url: str

    def faults(self, **rates: float) -> None:
        """Set the injected faults; with no arguments, none."""
        response = httpx.put(
            f"{self.url}/_control/faults",
            json={"error": 0, "reset": 0, "slow": 0, "accept_reset": 0, **rates},
        )
        response.raise_for_status()

    def charges_for(self, payout_id: UUID) -> list[dict[str, Any]]:
        listed = httpx.get(f"{self.url}/charges").json()
        return [c for c in listed if c["payout_id"] == str(payout_id)]


@dataclass
class Exchange:
    method: str
    path: str
    key: str | None
    status: int | None = None  # None: no answer (reset, timeout)


@dataclass
class WireLog:
    """What the adapter sent, in order, and what came back (httpx event hooks)."""

    exchanges: list[Exchange] = field(default_factory=list)
    _open: dict[int, Exchange] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, request: httpx.Request) -> None:
        exchange = Exchange(
            request.method, request.url.path, request.headers.get("Idempotency-Key")
        )
        with self._lock:
            self.exchanges.append(exchange)
            self._open[id(request)] = exchange

    def on_response(self, response: httpx.Response) -> None:
        with self._lock:
            self._open.pop(id(response.request)).status = response.status_code

    def posts(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST"]

    def keys(self) -> set[str | None]:
        """The idempotency keys of every charge request sent."""
        return {e.key for e in self.posts()}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    server = serve("127.0.0.1", 0)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    provider = Provider(f"http://127.0.0.1:{server.server_address[1]}")
    provider.faults(slow_seconds=SLOW_SECONDS)
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_faults_after(provider: Provider) -> Iterator[None]:
    yield
    provider.faults()


@pytest.fixture
def wire() -> WireLog:
    return WireLog()


@pytest.fixture
def gateway(provider: Provider, wire: WireLog) -> Iterator[HttpGateway]:
    gateway = HttpGateway(provider.url, connect_timeout=1.0, read_timeout=READ_TIMEOUT)
    gateway.client.event_hooks = {
        "request": [wire.on_request],
        "response": [wire.on_response],
    }
    yield gateway
    gateway.client.close()


def process_with_retries(
    payouts: Payouts,
    gateway: HttpGateway,
    payout_id: UUID,
    *,
    before_retry: Callable[[int], None] = lambda failed: None,
    attempts: int = 30,
) -> tuple[str, int]:
    """Run `process` until it settles, as Celery's autoretry would: (status, runs)."""
    for attempt in range(1, attempts + 1):
        try:
            return processing.process(
                payouts, gateway, payout_id, actor=WORKER
            ), attempt
        except TransientGatewayError:
            before_retry(attempt)
    raise AssertionError(f"still unsettled after {attempts} attempts")


def assert_paid_once(
    payouts: Payouts, provider: Provider, gateway: HttpGateway, payout_id: UUID
) -> None:
    """One charge at the provider, and the payout completed with that very charge."""
    (charge,) = provider.charges_for(payout_id)
    assert charge["idempotency_key"] == str(payout_id)
    history = payouts.history(payout_id)
    assert [r.type for r in history] == ["Created", "ProcessingStarted", "Completed"]
    held = gateway.status(payout_id)
    assert held is not None
    assert history[-1].data == {"gateway_reference": held.reference}


# What the adapter sent for each fault, with the answers: (method, path, status), the
# path's {} being the payout id. "error" and "reset" fail before charging, so the
# payout is paid on the third run. "slow" and "accept_reset" charge and lose the answer
# for good: the second run settles it by asking, and never posts again.
CHARGE, LOOKUP = "/charges", "/charges/{}"
FAULTS: dict[str, list[tuple[str, str, int | None]]] = {
    "error": [
        ("POST", CHARGE, 503),
        ("GET", LOOKUP, 404),
        ("POST", CHARGE, 503),
        ("GET", LOOKUP, 404),
        ("POST", CHARGE, 201),
    ],
    "reset": [
        ("POST", CHARGE, None),
        ("GET", LOOKUP, 404),
        ("POST", CHARGE, None),
        ("GET", LOOKUP, 404),
        ("POST", CHARGE, 201),
    ],
    "slow": [("POST", CHARGE, None), ("GET", LOOKUP, 200)],
    "accept_reset": [("POST", CHARGE, None), ("GET", LOOKUP, 200)],
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_every_charge_request_ends_in_one_charge_and_completed(
    payouts: Payouts,
    provider: Provider,
    gateway: HttpGateway,
    wire: WireLog,
    fault: str,
) -> None:
    # given: the fault on every call, until two runs have failed
    payout_id = create(payouts)
    provider.faults(**{fault: 1.0})

    def heal_after_two(failed: int) -> None:
        if failed == 2:
            provider.faults()

    # when
    status, runs = process_with_retries(
        payouts, gateway, payout_id, before_retry=heal_after_two
    )
    # then: each run after the first asked before paying again
    expected = [(m, path.format(payout_id), code) for m, path, code in FAULTS[fault]]
    assert status == "completed"
    assert [(e.method, e.path, e.status) for e in wire.exchanges] == expected
    assert runs == 1 + sum(method == "GET" for method, _, _ in expected)
    assert wire.keys() == {str(payout_id)}
    assert_paid_once(payouts, provider, gateway, payout_id)


def test_a_status_lookup_that_finds_nothing_pays_again_with_the_same_key(
    payouts: Payouts, provider: Provider, gateway: HttpGateway, wire: WireLog
) -> None:
    # given
    payout_id = create(payouts)
    provider.faults(reset=1.0)
    # when
    status, _ = process_with_retries(
        payouts, gateway, payout_id, before_retry=lambda failed: provider.faults()
    )
    # then
    assert status == "completed"
    assert [(e.method, e.path, e.key, e.status) for e in wire.exchanges] == [
        ("POST", "/charges", str(payout_id), None),
        ("GET", f"/charges/{payout_id}", None, 404),
        ("POST", "/charges", str(payout_id), 201),
    ]
    assert_paid_once(payouts, provider, gateway, payout_id)


def test_every_payout_is_charged_once_under_a_mix_of_all_faults(
    payouts: Payouts, provider: Provider, gateway: HttpGateway, wire: WireLog
) -> None:
    # given
    payout_ids = [create(payouts) for _ in range(12)]
    provider.faults(error=0.15, reset=0.15, slow=0.1, accept_reset=0.15)
    # when
    statuses = [
        process_with_retries(payouts, gateway, payout_id)[0] for payout_id in payout_ids
    ]
    # then
    assert statuses == ["completed"] * len(payout_ids)
    assert wire.keys() <= {str(payout_id) for payout_id in payout_ids}
    for payout_id in payout_ids:
        assert_paid_once(payouts, provider, gateway, payout_id)
