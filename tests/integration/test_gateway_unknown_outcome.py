"""When the gateway's answer is unknown (SPEC.md): the HTTP adapter against the bundled
fake provider, on a free loopback port. Pending, in-progress and unknown answers are
in flight, never declines; a payout fails only after its key was voided; what the
provider says is stored only once bounded and clean."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ledger.application import NewPayout, Payouts
from ledger.payout import MAX_REASON
from tests.builders import WORKER
from tests.provider import VISA, card_order, charges_for, serving
from tools.stack import wait_for
from workers import processing
from workers.gateway import fakeserver
from workers.gateway.base import PaymentInFlight, TransientGatewayError
from workers.gateway.fakeserver import Ledger
from workers.gateway.http import HttpGateway

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ledger.application import PaymentOrder

PENDING_THEN_SUCCEEDED = "4000000000003238"
PENDING_THEN_DECLINED = "4000000000003410"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Ledger]]:
    # The SPEC's delays, shortened: settling after 0.3 s, holding for 0.5 s.
    monkeypatch.setattr(fakeserver, "SETTLE_SECONDS", 0.3)
    monkeypatch.setitem(fakeserver.HOLD, "4000000000000259", 0.5)
    with serving() as served:
        yield served


@pytest.fixture
def provider_url(provider: tuple[str, Ledger]) -> str:
    return provider[0]


def held(ledger: Ledger, order: PaymentOrder) -> bool:
    """The provider is working on a request with this order's key right now."""
    return str(order.payout_id) in ledger.in_progress


@pytest.fixture
def gateway(provider_url: str) -> Iterator[HttpGateway]:
    # Reads time out well before the 3 s hold of the give-up test ends, yet leave
    # a loaded machine time to answer a call nothing holds (0.2 s did not, in CI).
    gateway = HttpGateway(provider_url, read_timeout=1.0)
    yield gateway
    gateway.client.close()


def create(payouts: Payouts, recipient: dict[str, str]) -> uuid.UUID:
    request = NewPayout(amount="15.00", currency="EUR", recipient=recipient)
    return payouts.create_payout(request, actor=WORKER).payout.id


def settle(gateway: HttpGateway, order: PaymentOrder) -> Any:
    """The charge's definitive answer, once the provider has one."""

    def known() -> Any:
        with contextlib.suppress(PaymentInFlight):
            return gateway.status(order.payout_id)
        return None

    return wait_for(known, 5, "the pending charge to settle", interval=0.05)


# card: (the settled answer's accepted and decline code, charges made)
SETTLED = {
    PENDING_THEN_SUCCEEDED: ((True, ""), 1),
    PENDING_THEN_DECLINED: ((False, "account_closed"), 0),
}


@pytest.mark.parametrize("number", list(SETTLED), ids=["succeeded", "declined"])
def test_a_pending_charge_is_in_flight_until_it_settles_with_one_charge_or_none(
    gateway: HttpGateway, provider_url: str, number: str
) -> None:
    # given
    order = card_order(number)
    answer, charges = SETTLED[number]
    # when / then: neither the answer nor the first lookup is a decline
    with pytest.raises(PaymentInFlight):
        gateway.pay(order)
    with pytest.raises(PaymentInFlight):
        gateway.status(order.payout_id)
    result = settle(gateway, order)
    assert (result.accepted, result.decline_code) == answer
    assert len(charges_for(provider_url, order)) == charges


def test_a_second_request_while_the_first_is_held_is_in_flight_not_a_failure(
    provider: tuple[str, Ledger],
) -> None:
    # given: a first request the provider holds
    provider_url, ledger = provider
    order = card_order("4000000000000259")
    slow = HttpGateway(provider_url, read_timeout=5.0)
    first = threading.Thread(target=slow.pay, args=(order,))
    first.start()
    wait_for(lambda: held(ledger, order), 5, "the provider to hold the request")
    # when
    with pytest.raises(PaymentInFlight):
        HttpGateway(provider_url, read_timeout=5.0).pay(order)
    first.join()
    # then: one charge, once the hold ended
    assert len(charges_for(provider_url, order)) == 1


def test_giving_up_voids_the_key_so_a_held_request_never_charges_a_failed_payout(
    payouts: Payouts,
    gateway: HttpGateway,
    provider: tuple[str, Ledger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider_url, ledger = provider
    # A hold long enough that give_up's void comes first on a loaded machine too:
    # a hold that ended earlier charges, and then completing is the right outcome.
    monkeypatch.setitem(fakeserver.HOLD, "4000000000000259", 3.0)
    # given: a payout whose last attempt timed out while the provider holds it
    payout_id = create(
        payouts, {"type": "card", "number": "4000000000000259", "holder": "A"}
    )
    order = payouts.start_processing(payout_id, actor=WORKER)
    with pytest.raises(TransientGatewayError):
        gateway.pay(order)
    # when: retries are exhausted
    status = processing.give_up(payouts, gateway, payout_id, actor=WORKER)
    # then: failed only because the key was voided, and the held request, once its
    # hold is over, is refused: no charge, now or later
    assert status == "failed"
    wait_for(lambda: not held(ledger, order), 10, "the provider's hold to end")
    assert charges_for(provider_url, order) == []
    assert payouts.get_payout(payout_id).failure_code == "gateway_unavailable"
    refused = gateway.pay(order)
    assert (refused.accepted, refused.decline_code) == (False, "gateway_unavailable")


def test_a_void_after_the_charge_succeeded_completes_the_payout(
    payouts: Payouts, gateway: HttpGateway, provider_url: str
) -> None:
    # given: charged, but the answer was lost and the lookup raced the charge
    payout_id = create(payouts, {"type": "card", "number": VISA, "holder": "A"})
    order = payouts.start_processing(payout_id, actor=WORKER)
    HttpGateway(provider_url).pay(order)
    # when
    known = gateway.void(payout_id)
    # then
    assert known is not None and known.accepted is True
    assert processing.give_up(payouts, gateway, payout_id, actor=WORKER) == "completed"


def test_a_pending_charge_at_give_up_leaves_the_payout_processing(
    payouts: Payouts, gateway: HttpGateway
) -> None:
    payout_id = create(
        payouts,
        {
            "type": "card",
            "number": PENDING_THEN_SUCCEEDED,
            "holder": "A",
        },
    )
    order = payouts.start_processing(payout_id, actor=WORKER)
    with pytest.raises(PaymentInFlight):
        gateway.pay(order)
    assert processing.give_up(payouts, gateway, payout_id, actor=WORKER) == "processing"
    assert payouts.get_payout(payout_id).status == "processing"


def canned_provider(status: int, body: Any) -> HttpGateway:
    """A provider answering one canned response: for answers the fake never gives."""
    # json.dumps escapes a lone surrogate as \ud800, as a provider's JSON may carry it.
    content = json.dumps(body).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            status, content=content, headers={"Content-Type": "application/json"}
        )
    )
    gateway = HttpGateway("http://provider.test")
    gateway.client = httpx.Client(base_url="http://provider.test", transport=transport)
    return gateway


@pytest.mark.parametrize("status", ["requires_action", "processing", None, 7])
def test_an_unknown_charge_status_is_in_doubt_not_a_decline(status: Any) -> None:
    gateway = canned_provider(200, {"id": "ch_1", "status": status})
    with pytest.raises(TransientGatewayError):
        gateway.status(uuid.uuid4())
    with pytest.raises(TransientGatewayError):
        gateway.pay(card_order())


@pytest.mark.parametrize(
    "message",
    ["nul\x00inside", "lone \ud800 surrogate", "x" * 100_000, "bell\x07 and\r\nbreaks"],
)
def test_what_the_provider_says_is_stored_bounded_and_clean(message: str) -> None:
    # given
    gateway = canned_provider(
        402, {"error": {"code": "weird\x00code", "message": message}, "id": "ch_\x00"}
    )
    # when
    result = gateway.pay(card_order())
    # then
    assert result.decline_code == "declined"
    assert len(result.decline_message) <= MAX_REASON
    result.decline_message.encode("utf-8")  # valid Unicode: no lone surrogate
    assert all(ch.isprintable() or ch == " " for ch in result.decline_message)


def test_a_succeeded_charge_with_an_unstorable_id_still_completes() -> None:
    gateway = canned_provider(
        201, {"id": "ch_\x00\ud800" + "x" * 500, "status": "succeeded"}
    )
    result = gateway.pay(card_order())
    assert result.accepted is True
    assert result.reference.isprintable() and len(result.reference) <= 128
