"""When to try a failing delivery again: exponential backoff with full jitter, inside
the retry window that starts at the delivery's first attempt."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def delay(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next try after `failures` failed attempts: uniform in
    [base/10, min(cap, base * 2**(failures - 1))] ("full jitter", floored so that
    a storm of failures never retries in a tight loop)."""
    ceiling = min(cap, base * 2 ** min(failures - 1, 62))
    return rng.uniform(min(base / 10, ceiling), ceiling)


def next_attempt(
    now: datetime,
    first_attempt: datetime,
    failures: int,
    *,
    window: float,
    base: float,
    cap: float,
    rng: random.Random,
) -> datetime | None:
    """When to try again, or None when the window has passed (give up). The last try
    falls on the window's end rather than past it."""
    end = first_attempt + timedelta(seconds=window)
    if now >= end:
        return None
    return min(
        now + timedelta(seconds=delay(failures, base=base, cap=cap, rng=rng)), end
    )
