"""The projection lag (/metrics, /readyz) comes from the projector's tracking row: the
time since it last read the log to its end, 0 when nothing is left to apply."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone

from api.ops import projection_lag_seconds
from projections import runner
from projections.models import Position
from projections.projectors import PayoutViewProjection
from projections.runner import catch_up
from tests.builders import TEST_ACTOR, new_payout

if TYPE_CHECKING:
    from datetime import datetime

    from ledger.application import Payouts


def create(ledger: Payouts) -> None:
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)


def caught_up_at() -> Any:
    return Position.objects.get(name=PayoutViewProjection.name).caught_up_at


def caught_up(ledger: Payouts, project: Any, *, ago: timedelta) -> datetime:
    """A payout projected, and the projection's last read to the end of the log
    moved `ago` into the past; returns when that read is now said to have been."""
    create(ledger)
    project()
    at = timezone.now() - ago
    Position.objects.filter(name=PayoutViewProjection.name).update(caught_up_at=at)
    return at


def test_a_projection_that_applied_every_event_has_no_lag(
    ledger: Payouts, project: Any
) -> None:
    # given
    create(ledger)
    project()
    # then
    assert projection_lag_seconds() == 0.0


def test_events_left_to_apply_lag_by_the_time_since_the_projection_caught_up(
    ledger: Payouts, project: Any
) -> None:
    # given: caught up two minutes ago, and an event written since
    caught_up(ledger, project, ago=timedelta(minutes=2))
    create(ledger)
    # when
    lag = projection_lag_seconds()
    # then
    assert 120 <= lag < 180


def test_a_projection_that_never_ran_lags_without_bound_once_events_exist(
    ledger: Payouts,
) -> None:
    # given: nothing yet, then an event and still no projector
    assert projection_lag_seconds() == 0.0
    create(ledger)
    # then
    assert projection_lag_seconds() == math.inf


def test_a_projector_with_nothing_new_notes_that_it_is_caught_up(
    ledger: Payouts, project: Any
) -> None:
    # given: a projection whose last read to the end was long ago
    long_ago = caught_up(ledger, project, ago=timedelta(hours=1))
    # when
    applied = catch_up(ledger, PayoutViewProjection())
    # then
    assert applied == 0
    assert caught_up_at() > long_ago + timedelta(minutes=59)


def test_a_full_batch_is_not_taken_for_having_caught_up(
    ledger: Payouts, project: Any
) -> None:
    # given: more events than one batch holds
    long_ago = caught_up(ledger, project, ago=timedelta(hours=1))
    create(ledger)
    create(ledger)
    # when
    applied = catch_up(ledger, PayoutViewProjection(), batch_size=1)
    # then: there may be more behind it
    assert applied == 1
    assert caught_up_at() == long_ago


@pytest.mark.parametrize(
    ("postgres", "age", "written"),
    [
        (False, timedelta(milliseconds=500), False),
        (False, timedelta(seconds=2), True),
        (True, timedelta(milliseconds=1), True),
    ],
    ids=["polling-within-the-heartbeat", "polling-past-it", "notified-every-read"],
)
def test_an_idle_projector_stamps_its_row_once_a_second_when_polling_and_every_read_when_notified(
    ledger: Payouts,
    project: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    postgres: bool,
    age: timedelta,
    written: bool,
) -> None:
    # given: a fixed clock, and a projection that caught up `age` before it
    now = caught_up(ledger, project, ago=age) + age
    monkeypatch.setattr(runner.timezone, "now", lambda: now)
    settings.IS_POSTGRES = postgres
    # when
    catch_up(ledger, PayoutViewProjection())
    # then
    assert caught_up_at() == (now if written else now - age)


def test_a_batch_that_reaches_the_head_stamps_the_read_in_the_same_update(
    ledger: Payouts, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a projection that caught up an hour ago, and a new event
    caught_up(ledger, project, ago=timedelta(hours=1))
    create(ledger)
    now = timezone.now()
    monkeypatch.setattr(runner.timezone, "now", lambda: now)
    # when
    applied = catch_up(ledger, PayoutViewProjection())
    # then
    assert applied == 1
    assert caught_up_at() == now
