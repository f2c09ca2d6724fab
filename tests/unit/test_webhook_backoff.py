"""Retries: exponential backoff with full jitter, inside the retry window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from webhooks.backoff import delay, next_attempt

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=500), st.integers(min_value=0))
def test_a_delay_stays_within_its_jittered_exponential_bound(
    failures: int, seed: int
) -> None:
    rng = random.Random(seed)
    seconds = delay(failures, base=5, cap=3600, rng=rng)
    ceiling = min(3600, 5 * 2 ** (failures - 1))
    assert 0.5 <= seconds <= ceiling


def test_delays_grow_exponentially_until_the_cap() -> None:
    # given: the largest draw each time
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    # when
    ceilings = [delay(n, base=1, cap=30, rng=Top()) for n in range(1, 8)]
    # then
    assert ceilings == [1, 2, 4, 8, 16, 30, 30]


def test_delays_are_jittered() -> None:
    rng = random.Random(7)
    assert len({delay(6, base=1, cap=60, rng=rng) for _ in range(20)}) == 20


def test_the_last_try_falls_on_the_end_of_the_window() -> None:
    # given: a delivery first tried 95 s ago, in a 100 s window
    now = T0 + timedelta(seconds=95)
    # when
    later = next_attempt(
        now, T0, 10, window=100, base=60, cap=600, rng=random.Random(1)
    )
    # then
    assert later is not None
    assert now < later <= T0 + timedelta(seconds=100)


def test_after_the_window_there_is_no_next_try() -> None:
    now = T0 + timedelta(seconds=100)
    assert (
        next_attempt(now, T0, 3, window=100, base=1, cap=5, rng=random.Random()) is None
    )
