"""sweep_stuck_payouts: re-enqueue what is stuck, once per deadline, nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from projections.models import PayoutView
from workers import tasks

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

pytestmark = pytest.mark.django_db


def view(status: str, updated_at: datetime) -> PayoutView:
    return PayoutView(
        id=uuid4(),
        status=status,
        amount=10,
        currency="EUR",
        recipient_type="card",
        recipient={},
        version=1,
        created_at=updated_at,
        updated_at=updated_at,
        position=1,
    )


def row(status: str, updated_at: datetime) -> UUID:
    payout = view(status, updated_at)
    payout.save(force_insert=True)
    return payout.id


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    messages: list[str] = []

    def apply_async(args: list[str], **options: Any) -> None:
        assert options["expires"] == 2 * settings.STUCK_PAYOUT_AFTER
        messages.append(args[0])

    monkeypatch.setattr(tasks.process_payout, "apply_async", apply_async)
    yield messages
    for payout_id in messages:
        cache.delete(f"swept:{payout_id}")


def test_a_stuck_payout_is_reenqueued_once_per_deadline(sent: list[str]) -> None:
    # given: payouts past the deadline (pending, processing), a recent one, a final one
    old = timezone.now() - timedelta(seconds=settings.STUCK_PAYOUT_AFTER + 5)
    stuck = {row("pending", old), row("processing", old)}
    row("pending", timezone.now())
    row("completed", old)
    # when: the sweep runs, then runs again before the deadline has passed once more
    first = tasks.sweep_stuck_payouts()
    second = tasks.sweep_stuck_payouts()
    # then: each stuck payout was sent once, not once per sweep (a flood behind a
    # backlog), and nothing else was sent
    assert (first, second) == (2, 0)
    assert sorted(sent) == sorted(str(i) for i in stuck)


def test_a_payout_still_stuck_after_another_deadline_is_sent_again(
    sent: list[str],
) -> None:
    old = timezone.now() - timedelta(seconds=settings.STUCK_PAYOUT_AFTER + 5)
    stuck = row("processing", old)
    tasks.sweep_stuck_payouts()
    cache.delete(f"swept:{stuck}")  # as when STUCK_PAYOUT_AFTER has passed
    tasks.sweep_stuck_payouts()
    assert sent == [str(stuck), str(stuck)]


def test_payouts_swept_already_never_hide_the_overdue_ones_behind_them(
    sent: list[str],
) -> None:
    # given: more overdue payouts than one sweep sends (the oldest stuck for good)
    old = timezone.now() - timedelta(seconds=settings.STUCK_PAYOUT_AFTER + 60)
    PayoutView.objects.bulk_create(
        view("processing", old + timedelta(milliseconds=n))
        for n in range(tasks.SWEEP_BATCH)
    )
    newer = row("processing", old + timedelta(seconds=30))
    # when: the first sweep sends a full batch of the oldest; the next one runs while
    # those are still within their deadline
    first = tasks.sweep_stuck_payouts()
    second = tasks.sweep_stuck_payouts()
    # then: the newer overdue payout is reached, not starved behind the old ones
    assert (first, second) == (tasks.SWEEP_BATCH, 1)
    assert sent[-1] == str(newer)
