"""Named crash points for fault tests (FoundationDB's BUGGIFY, in miniature).

FAILPOINTS="after_processing_started:0.05,after_gateway_call:0.05" makes a worker kill
itself with SIGKILL at that point with that probability: the crash orders a `kill -9`
from outside can only hit by luck. Unset (production), a check is one dict lookup.
"""

from __future__ import annotations

import os
import random
import signal

_rates: dict[str, float] = {}


def configure(spec: str) -> None:
    _rates.clear()
    for item in spec.split(","):
        if item.strip():
            name, rate = item.split(":", 1)
            _rates[name.strip()] = float(rate)


def hit(name: str) -> None:
    rate = _rates.get(name)
    if rate and random.random() < rate:
        os.kill(os.getpid(), signal.SIGKILL)
