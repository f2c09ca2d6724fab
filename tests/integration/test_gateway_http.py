"""HttpGateway against the bundled fake provider, served on a free loopback port."""

from __future__ import annotations

import socket
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from ledger.application import PaymentOrder
from ledger.values import bank_account_recipient
from tests.provider import VISA, card_order, charges_for, start_server
from tools.stack import wait_for
from workers.gateway.base import PermanentGatewayError, TransientGatewayError
from workers.gateway.http import HttpGateway

if TYPE_CHECKING:
    from collections.abc import Iterator

FLAKY = "4000000000000119"


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    yield from start_server()


@pytest.fixture(scope="module")
def slow_provider_url() -> Iterator[str]:
    yield from start_server(latency_ms=300)


@pytest.fixture
def gateway(provider_url: str) -> Iterator[HttpGateway]:
    gateway = HttpGateway(provider_url, read_timeout=5.0)
    yield gateway
    gateway.client.close()


def test_a_valid_card_is_accepted(gateway: HttpGateway) -> None:
    # when
    result = gateway.pay(card_order())
    # then
    assert result.accepted is True
    assert result.reference.startswith("ch_")


def test_a_valid_iban_is_accepted(gateway: HttpGateway) -> None:
    # given
    order = PaymentOrder(
        payout_id=uuid.uuid4(),
        amount=Decimal("250000"),
        currency="JPY",
        recipient=bank_account_recipient("DE89370400440532013000", "Grace"),
        status="processing",
    )
    # when
    result = gateway.pay(order)
    # then
    assert result.accepted is True


@pytest.mark.parametrize(
    ("number", "code"),
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")],
)
def test_a_test_card_is_declined_with_its_code(
    gateway: HttpGateway, provider_url: str, number: str, code: str
) -> None:
    # given
    order = card_order(number)
    # when
    result = gateway.pay(order)
    # then
    assert result.accepted is False
    assert result.decline_code == code
    assert result.decline_message
    assert charges_for(provider_url, order) == []


def test_the_flaky_card_is_unavailable_twice_then_accepted(
    gateway: HttpGateway,
) -> None:
    # given
    order = card_order(FLAKY)
    # when
    errors = []
    for _ in range(2):
        with pytest.raises(TransientGatewayError) as unavailable:
            gateway.pay(order)
        errors.append(str(unavailable.value))
    result = gateway.pay(order)
    # then
    assert errors == ["gateway answered HTTP 503"] * 2
    assert result.accepted is True


def test_paying_twice_with_one_key_makes_one_charge(
    gateway: HttpGateway, provider_url: str
) -> None:
    # given
    order = card_order()
    first = gateway.pay(order)
    # when
    second = gateway.pay(order)
    # then
    assert second == first
    assert len(charges_for(provider_url, order)) == 1


def test_the_charge_list_shows_the_charge_in_major_units(
    gateway: HttpGateway, provider_url: str
) -> None:
    # given
    order = card_order(amount="12.50")
    # when
    gateway.pay(order)
    # then
    (charge,) = charges_for(provider_url, order)
    assert charge["amount"] == "12.50"
    assert charge["currency"] == "EUR"
    assert charge["idempotency_key"] == str(order.payout_id)
    assert datetime.fromisoformat(charge["created_at"]).tzinfo is not None
    assert VISA not in str(charge)


def test_one_key_with_other_parameters_is_refused_permanently(
    gateway: HttpGateway, provider_url: str
) -> None:
    # given
    order = card_order(amount="10.00")
    gateway.pay(order)
    changed = PaymentOrder(
        payout_id=order.payout_id,
        amount=Decimal("99.00"),
        currency=order.currency,
        recipient=order.recipient,
        status=order.status,
    )
    # when
    with pytest.raises(PermanentGatewayError):
        gateway.pay(changed)
    # then
    assert [c["amount"] for c in charges_for(provider_url, order)] == ["10.00"]


def test_status_finds_an_accepted_charge(gateway: HttpGateway) -> None:
    # given
    order = card_order()
    paid = gateway.pay(order)
    # when
    found = gateway.status(order.payout_id)
    # then
    assert found == paid


def test_status_finds_a_decline(gateway: HttpGateway) -> None:
    # given
    order = card_order("4000000000000002")
    gateway.pay(order)
    # when
    found = gateway.status(order.payout_id)
    # then
    assert found is not None
    assert (found.accepted, found.decline_code) == (False, "card_declined")


def test_status_of_a_payout_never_sent_is_none(gateway: HttpGateway) -> None:
    assert gateway.status(uuid.uuid4()) is None


def test_a_read_timeout_is_a_transient_error(slow_provider_url: str) -> None:
    # given
    gateway = HttpGateway(slow_provider_url, read_timeout=0.05)
    # when / then
    with pytest.raises(TransientGatewayError):
        gateway.pay(card_order())
    gateway.client.close()


def test_a_charge_whose_answer_timed_out_is_found_by_status(
    slow_provider_url: str,
) -> None:
    # given
    impatient = HttpGateway(slow_provider_url, read_timeout=0.05)
    order = card_order()
    with pytest.raises(TransientGatewayError):
        impatient.pay(order)
    # when
    wait_for(
        lambda: impatient.status(order.payout_id) is not None, 5, "the late charge"
    )
    found = impatient.status(order.payout_id)
    # then
    assert found is not None
    assert found.accepted is True
    impatient.client.close()


def test_a_refused_connection_is_a_transient_error() -> None:
    # given: a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = HttpGateway(f"http://127.0.0.1:{port}", connect_timeout=0.5)
    # when / then
    with pytest.raises(TransientGatewayError):
        gateway.pay(card_order())
    with pytest.raises(TransientGatewayError):
        gateway.status(uuid.uuid4())
    gateway.client.close()


def test_the_provider_never_logs_a_full_card_number(
    gateway: HttpGateway, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    caplog.set_level("INFO", logger="fakegateway")
    # when
    gateway.pay(card_order())
    gateway.pay(card_order("4000000000000002"))
    # then
    assert "POST /charges" in caplog.text
    assert VISA not in caplog.text
    assert "4000000000000002" not in caplog.text


def test_proxy_variables_of_the_environment_are_ignored(
    provider_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a process environment pointing every request at a dead proxy
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    # when
    result = HttpGateway(provider_url).pay(card_order())
    # then: the card went straight to the provider
    assert result.accepted is True
