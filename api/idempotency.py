"""What an Idempotency-Key replay is compared on: a fingerprint of the request body.

The fingerprint is stored in the `Created` event and published with its chain fields
(history, exports), so it must not give the card number away: the body holds the full
number, and anyone holding the fingerprint and the masked number could otherwise try
the few missing digits. So the number is replaced by a keyed digest before the body is
hashed, and both are keyed with IDEMPOTENCY_FINGERPRINT_KEY, a key of its own: SECRET_KEY
signs sessions and is rotated for reasons of its own, and a rotation must not turn every
stored key's replay into a 422.

Fingerprints carry their scheme (`v2:`). Those stored before it (no prefix) were an HMAC
of the whole body, card number included, keyed with SECRET_KEY; `legacy_fingerprint`
recomputes one in memory, never to store it, so that keys created before the change
still replay (the ledger compares a stored unprefixed fingerprint with it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

VERSION = "v2"


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _keyed(key: bytes, purpose: bytes, message: bytes) -> str:
    return hmac.new(key, purpose + b"\x00" + message, hashlib.sha256).hexdigest()


def _without_card_number(data: Any, key: bytes) -> Any:
    recipient = data.get("recipient_details") if isinstance(data, dict) else None
    if not isinstance(recipient, dict) or "number" not in recipient:
        return data
    # The raw JSON value (a string, or whatever was sent) keeps "4242" and 4242 apart,
    # as the body itself would.
    digest = _keyed(key, b"card-number", _canonical(recipient["number"]))
    return {**data, "recipient_details": {**recipient, "number": digest}}


def fingerprint(data: Any) -> str:
    """The fingerprint stored with a create made under an Idempotency-Key."""
    key = settings.IDEMPOTENCY_FINGERPRINT_KEY.encode()
    body = _canonical(_without_card_number(data, key))
    return f"{VERSION}:{_keyed(key, b'request-body', body)}"


def legacy_fingerprint(data: Any) -> str:
    """The scheme before `v2`, for comparing with fingerprints stored under it only."""
    canonical = _canonical(data).decode()
    return salted_hmac("payouts.idempotency", canonical, algorithm="sha256").hexdigest()
