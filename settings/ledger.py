"""LEDGER: the ledger's own settings, which its composition root (ledger/apps.py)
reads; where it keeps its events is EVENT_STORE (settings/eventstore.py)."""

from __future__ import annotations

from ledger.values import DEFAULT_MAX_AMOUNT
from settings.env import env

LEDGER = {
    # What this deployment pays out (ledger.values.MoneyPolicy): at most MAX_AMOUNT,
    # in CURRENCIES only when that is not empty (else any active ISO 4217 code).
    "MAX_AMOUNT": env.str("PAYOUT_MAX_AMOUNT", default=str(DEFAULT_MAX_AMOUNT)),
    "CURRENCIES": [
        c.strip().upper() for c in env.list("PAYOUT_CURRENCIES", default=[])
    ],
}
