"""The HTTP adapter: the only code that knows the provider's URLs, codes and headers."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

import httpx

from ledger.payout import MAX_REASON
from ledger.values import CardRecipient
from workers.gateway.base import (
    PaymentInFlight,
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
        proxy: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            # A payment call never follows a redirect blindly (OWASP API10).
            follow_redirects=False,
            # Proxy variables of the environment are ignored: only `proxy` is used.
            trust_env=False,
            proxy=proxy,
        )

    @classmethod
    def from_settings(cls, config: dict[str, Any]) -> HttpGateway:
        return cls(
            config["URL"],
            api_key=config["API_KEY"],
            connect_timeout=config["CONNECT_TIMEOUT"],
            read_timeout=config["READ_TIMEOUT"],
            proxy=config.get("PROXY"),
        )

    def pay(self, order: PaymentOrder) -> SubmitResult:
        response = self._call(
            "POST",
            "/charges",
            json=_charge_body(order),
            # The payout id: every retry and every redelivery pays at most once.
            headers={"Idempotency-Key": str(order.payout_id)},
        )
        if response.status_code == 202:
            raise PaymentInFlight("the gateway accepted the charge as pending")
        if response.status_code in (200, 201):
            return _charge_result(response)
        if response.status_code == 402:
            return _declined(response)
        if response.status_code == 409:
            code = _error(response).get("code")
            if code == "key_voided":
                # We voided this key ourselves: the provider promised no charge.
                return SubmitResult(
                    accepted=False,
                    decline_code="gateway_unavailable",
                    decline_message="The payment gateway was unavailable; the charge "
                    "was voided and never made.",
                )
            if code == "request_in_progress":
                raise PaymentInFlight("a request with this key is still in progress")
        raise _unexpected(response)

    def status(self, payout_id: UUID) -> SubmitResult | None:
        response = self._call("GET", f"/charges/{payout_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unexpected(response)
        return _charge_result(response)

    def void(self, payout_id: UUID) -> SubmitResult | None:
        response = self._call("POST", f"/charges/{payout_id}/void")
        if response.status_code == 200 and _json(response).get("voided") is True:
            return None
        if response.status_code == 409:
            charge = _json(response).get("charge")
            if isinstance(charge, dict) and charge.get("status") == "succeeded":
                return SubmitResult(accepted=True, reference=_clean_reference(charge))
        raise _unexpected(response)

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
    destination: dict[str, str | None]
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


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TransientGatewayError(
            "gateway answered with a body that is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise TransientGatewayError(
            "gateway answered with a body that is not an object"
        )
    return body


def _charge_result(response: httpx.Response) -> SubmitResult:
    """A charge record, as the provider documents its statuses: only `succeeded` and
    `declined` are definitive; `pending` is in flight; anything else is unknown."""
    body = _json(response)
    status = body.get("status")
    if status == "succeeded":
        return SubmitResult(accepted=True, reference=_clean_reference(body))
    if status == "declined":
        return _declined(response)
    if status == "pending":
        raise PaymentInFlight("the gateway holds the charge as pending")
    raise TransientGatewayError(
        f"gateway answered an unknown status {_clean(str(status), 32)!r}"
    )


# What the ledger stores of a provider's answer: bounded, printable, valid text.
REFERENCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
DECLINE_CODE = re.compile(r"[a-z0-9_]{1,64}")


def _clean_reference(body: dict[str, Any]) -> str:
    """A charge that succeeded is recorded whatever its id looks like: an id we could
    not store must not turn money moved into a failure."""
    reference = body.get("id")
    if isinstance(reference, str) and REFERENCE.fullmatch(reference):
        return reference
    return "unreadable-reference"


def _clean(text: str, limit: int) -> str:
    """No control characters, no lone surrogates, at most `limit` characters."""
    kept = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn")
    )
    return kept[:limit]


def _declined(response: httpx.Response) -> SubmitResult:
    error = _error(response)
    code = error.get("code")
    message = error.get("message")
    return SubmitResult(
        accepted=False,
        decline_code=code
        if isinstance(code, str) and DECLINE_CODE.fullmatch(code)
        else "declined",
        decline_message=(
            _clean(message, MAX_REASON) if isinstance(message, str) else ""
        )
        or "Declined by the gateway.",
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
