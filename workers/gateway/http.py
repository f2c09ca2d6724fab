"""The HTTP adapter: the only code that knows the provider's URLs, codes and headers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from ledger.values import CardRecipient
from workers.gateway.base import (
    PermanentGatewayError,
    SubmitResult,
    TransientGatewayError,
)

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import PaymentOrder


class HttpGateway:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            # A payment call never follows a redirect blindly (OWASP API10).
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, config: dict[str, Any]) -> HttpGateway:
        return cls(
            config["URL"],
            api_key=config["API_KEY"],
            connect_timeout=config["CONNECT_TIMEOUT"],
            read_timeout=config["READ_TIMEOUT"],
        )

    def pay(self, order: PaymentOrder) -> SubmitResult:
        response = self._call(
            "POST",
            "/charges",
            json=_charge_body(order),
            # The payout id: every retry and every redelivery pays at most once.
            headers={"Idempotency-Key": str(order.payout_id)},
        )
        if response.status_code in (200, 201):
            return SubmitResult(accepted=True, reference=_reference(response))
        if response.status_code == 402:
            return _declined(response)
        raise _unexpected(response)

    def status(self, payout_id: UUID) -> SubmitResult | None:
        response = self._call("GET", f"/charges/{payout_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unexpected(response)
        reference = _reference(response)
        if response.json().get("status") == "succeeded":
            return SubmitResult(accepted=True, reference=reference)
        return _declined(response)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            # Timeouts and resets leave the outcome unknown: retry with the same key.
            raise TransientGatewayError(
                f"{type(exc).__name__} calling the gateway"
            ) from None


def _charge_body(order: PaymentOrder) -> dict[str, Any]:
    recipient = order.recipient
    if isinstance(recipient, CardRecipient):
        destination = {
            "type": "card",
            "number": recipient.number.reveal(),
            "holder": recipient.holder,
        }
    else:
        destination = {
            "type": "bank_account",
            "iban": recipient.iban,
            "bic": recipient.bic,
            "holder": recipient.holder,
        }
    # Built from the stored event alone, so a retry sends byte-identical parameters.
    return {
        "payout_id": str(order.payout_id),
        "amount": str(order.amount),
        "currency": order.currency,
        "destination": destination,
    }


def _reference(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        raise TransientGatewayError(
            "gateway answered with a body that is not JSON"
        ) from None
    reference = body.get("id") if isinstance(body, dict) else None
    if not isinstance(reference, str) or not reference or len(reference) > 128:
        raise TransientGatewayError("gateway answered without a charge id")
    return reference


def _declined(response: httpx.Response) -> SubmitResult:
    error = _error(response)
    return SubmitResult(
        accepted=False,
        decline_code=str(error.get("code") or "declined")[:64],
        decline_message=str(error.get("message") or "Declined by the gateway.")[:500],
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _unexpected(response: httpx.Response) -> Exception:
    if response.status_code == 429 or response.status_code >= 500:
        return TransientGatewayError(f"gateway answered HTTP {response.status_code}")
    return PermanentGatewayError(f"gateway answered HTTP {response.status_code}")
