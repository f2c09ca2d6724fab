"""Signing secrets and signatures, the Standard Webhooks way (`standardwebhooks`).

A secret is `whsec_` + base64 of 32 random bytes, the form receivers' libraries take
as it is. At rest it is sealed with the event store's cipher (CIPHER_KEYS), bound to
its endpoint: a sealed secret copied onto another endpoint's row does not open.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from eventsourcing.utils import Environment
from standardwebhooks.webhooks import Webhook

from ledger.cipher import RotatingCipher

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@cache
def _cipher() -> RotatingCipher:
    return RotatingCipher(Environment("payouts", dict(settings.EVENT_STORE)))


def seal(secret: str, endpoint_id: UUID) -> bytes:
    return _cipher().seal(secret.encode(), endpoint_id.bytes)


def unseal(sealed: bytes | memoryview, endpoint_id: UUID) -> str:
    # A BinaryField's value: bytes, or a memoryview from some database drivers.
    return _cipher().unseal(bytes(sealed), endpoint_id.bytes).decode()


def signature_headers(
    message_id: str, payload: str, secrets_: Sequence[str], at: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers; one `v1,` signature per secret, so that
    during a rotation a receiver holding either secret verifies."""
    at = at or datetime.now(UTC)
    signatures = " ".join(
        Webhook(secret).sign(message_id, at, payload) for secret in secrets_
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
