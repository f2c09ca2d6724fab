"""Payouts this process saved last, so that its next step on one need not read it."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid

    from ledger.payout import Payout


class RecentlySaved:
    """The last payouts this process saved, at the version it saved: the next step
    of a payout (the worker's complete after its start_processing) starts from here
    instead of reading its stream again. Each is a copy taken once."""

    SIZE = 1024

    def __init__(self) -> None:
        self._payouts: OrderedDict[uuid.UUID, Payout] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, payout: Payout) -> None:
        kept = copy.deepcopy(payout)
        with self._lock:
            self._payouts[payout.id] = kept
            self._payouts.move_to_end(payout.id)
            while len(self._payouts) > self.SIZE:
                self._payouts.popitem(last=False)

    def take(self, payout_id: uuid.UUID) -> Payout | None:
        with self._lock:
            return self._payouts.pop(payout_id, None)
