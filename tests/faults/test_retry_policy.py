"""The retry policy of process_payout, the sweeper, and the dispatcher under outages.

`process_payout.apply()` runs the task in this process (no broker): an autoretry runs
the next attempt at once, so a whole retry schedule takes milliseconds. The sweeper
and the dispatcher publish to an in-memory broker whose queue the test reads.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.utils import timezone
from eventsourcing.domain import CanCreateTimestamp
from kombu.exceptions import OperationalError

from projections.runner import catch_up
from tests.builders import TEST_ACTOR, WORKER, create
from tests.fakes import TASK, take_messages
from tests.support import dispatch, dispatcher_position
from workers import dispatcher, tasks
from workers.dispatcher import PayoutDispatcher
from workers.gateway.base import (
    PermanentGatewayError,
    SubmitResult,
    TransientGatewayError,
)
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime
    from uuid import UUID

    from ledger.application import PaymentOrder, Payouts
    from tests.support import Deliver

ATTEMPTS = settings.PAYOUT_MAX_RETRIES + 1


class DownGateway(FakeGateway):
    """Unavailable for every charge; its record (empty) can still be read."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def pay(self, order: PaymentOrder) -> SubmitResult:
        self.calls.append(order.payout_id)
        raise TransientGatewayError("gateway answered HTTP 503")

    def status(self, payout_id: UUID) -> SubmitResult | None:
        self.lookups += 1
        return super().status(payout_id)


class UnreachableGateway(DownGateway):
    """Cannot even be asked what it holds."""

    def status(self, payout_id: UUID) -> SubmitResult | None:
        self.lookups += 1
        raise TransientGatewayError("ConnectError calling the gateway")


@pytest.fixture
def countdowns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The countdown of every retry process_payout schedules."""
    seen: list[float] = []
    retry = tasks.process_payout.retry

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(tasks.process_payout, "retry", spy)
    return seen


def types(ledger: Payouts, payout_id: UUID) -> list[str]:
    return [record.type for record in ledger.history(payout_id)]


# Retries, then giving up


# gateway: (charge requests sent, final status and failure code, history)
GIVING_UP = {
    # Every answer is a 503 and its record holds no charge: nothing was paid.
    "never charged": (
        DownGateway,
        ATTEMPTS,
        ("failed", "gateway_unavailable"),
        ["Created", "ProcessingStarted", "Failed"],
    ),
    # The first request may have gone through and nothing answers after it: never
    # paid again without an answer, never failed on a guess; left to the sweeper.
    "charge not ruled out": (
        UnreachableGateway,
        1,
        ("processing", None),
        ["Created", "ProcessingStarted"],
    ),
}


@pytest.mark.parametrize("case", list(GIVING_UP))
def test_after_the_last_retry_a_payout_fails_only_if_no_charge_can_have_been_made(
    ledger: Payouts, deliver: Deliver, case: str
) -> None:
    # given
    gateway_class, requests, final, history = GIVING_UP[case]
    gateway = gateway_class()
    payout_id = create(ledger)
    # when
    result = deliver(payout_id, gateway)
    # then
    assert result.state == "FAILURE"
    assert gateway.calls == [payout_id] * requests
    assert gateway.lookups == ATTEMPTS  # every resumed run, and giving up, asked once
    payout = ledger.get_payout(payout_id)
    assert (payout.status, payout.failure_code) == final
    assert types(ledger, payout_id) == history


class RefusingLookupGateway(DownGateway):
    """Answers its status lookup with a refusal (HTTP 401: our configuration)."""

    def status(self, payout_id: UUID) -> SubmitResult | None:
        raise PermanentGatewayError("gateway answered HTTP 401")


def test_a_refused_lookup_after_the_last_retry_leaves_the_payout_to_the_sweeper(
    ledger: Payouts, use_gateway: Callable[[FakeGateway], None]
) -> None:
    # given: retries exhausted on a payout in flight
    use_gateway(RefusingLookupGateway())
    payout_id = create(ledger)
    ledger.start_processing(payout_id, actor=WORKER)
    # when: the give-up's lookup is refused inside on_failure
    tasks.process_payout.on_failure(
        TransientGatewayError("HTTP 503"), "task-1", [str(payout_id)], {}, None
    )
    # then: handled there (raised, Celery would report an internal error and run the
    # handler again), and the payout stays in flight for the sweeper
    assert ledger.get_payout(payout_id).status == "processing"


def test_a_gateway_back_before_the_last_retry_completes_the_payout_once(
    ledger: Payouts, deliver: Deliver
) -> None:
    # given
    gateway = FakeGateway()
    gateway.script(*[TransientGatewayError("HTTP 503")] * (ATTEMPTS - 1))
    payout_id = create(ledger)
    # when
    result = deliver(payout_id, gateway)
    # then
    assert (result.state, result.result) == ("SUCCESS", "completed")
    assert gateway.accepted == [payout_id]
    assert types(ledger, payout_id) == ["Created", "ProcessingStarted", "Completed"]


def test_every_retry_countdown_stays_below_the_visibility_timeout(
    ledger: Payouts, deliver: Deliver, countdowns: list[float]
) -> None:
    # given
    payout_id = create(ledger)
    # when
    deliver(payout_id, DownGateway())
    # then: each retry was scheduled with a jittered countdown under the cap
    task = tasks.process_payout
    assert len(countdowns) == ATTEMPTS
    assert all(0 <= c <= task.retry_backoff_max for c in countdowns), countdowns
    # and the cap itself, however many retries: a retry message is held unacked for
    # its countdown, then run for up to the time limit, both inside the visibility
    # timeout, or Redis hands it to a second worker meanwhile
    assert task.retry_backoff_max == settings.PAYOUT_RETRY_BACKOFF_MAX
    assert (
        task.retry_backoff_max + settings.CELERY_TASK_TIME_LIMIT
        < settings.VISIBILITY_TIMEOUT
    )
    assert task.max_retries == settings.PAYOUT_MAX_RETRIES is not None
    if settings.REDIS_URL:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert options["visibility_timeout"] == settings.VISIBILITY_TIMEOUT


# The sweeper


@contextmanager
def events_dated(when: datetime) -> Iterator[None]:
    """Events recorded inside the block carry this timestamp."""
    saved = CanCreateTimestamp.__dict__["create_timestamp"]
    CanCreateTimestamp.create_timestamp = staticmethod(lambda: when)  # type: ignore[method-assign]
    try:
        yield
    finally:
        CanCreateTimestamp.create_timestamp = saved  # type: ignore[method-assign]


def test_the_sweeper_reenqueues_payouts_in_flight_past_the_deadline_only(
    ledger: Payouts, project: Callable[[], int], memory_broker: None
) -> None:
    # given: payouts last changed before the deadline, in every status
    before_deadline = timezone.now() - timedelta(
        seconds=settings.STUCK_PAYOUT_AFTER + 30
    )
    with events_dated(before_deadline):
        old_pending, old_processing, completed, failed, cancelled, resumed = (
            create(ledger) for _ in range(6)
        )
        for payout_id in (old_processing, completed, failed):
            ledger.start_processing(payout_id, actor=WORKER)
        ledger.complete(completed, gateway_reference="ch_1", actor=WORKER)
        ledger.fail(failed, code="card_declined", message="Declined.", actor=WORKER)
        ledger.cancel(cancelled, reason="asked", actor=TEST_ACTOR)
    # and payouts changed since: a new one, and an old one a worker just picked up
    create(ledger)
    ledger.start_processing(resumed, actor=WORKER)
    project()
    # when
    swept = tasks.sweep_stuck_payouts()
    # then
    messages = take_messages()
    assert swept == 2
    assert sorted(messages) == sorted(
        [(TASK, [str(old_pending)]), (TASK, [str(old_processing)])]
    )


# The dispatcher: publish first, then record the position


def test_a_broker_lost_mid_batch_republishes_the_whole_batch_and_skips_nothing(
    ledger: Payouts, memory_broker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the broker goes away after the first message of a batch of three
    payout_ids = [create(ledger) for _ in range(3)]
    publish = tasks.process_payout.apply_async
    published: list[str] = []

    def flaky_publish(*args: Any, **kwargs: Any) -> Any:
        if len(published) == 1:
            raise OperationalError("Error 111 connecting to redis. Connection refused.")
        published.append(kwargs["args"][0])
        return publish(*args, **kwargs)

    monkeypatch.setattr(dispatcher.process_payout, "apply_async", flaky_publish)
    with pytest.raises(OperationalError):
        catch_up(ledger, PayoutDispatcher())
    # then: the batch is not tracked, though its first message went out
    assert dispatcher_position() == 0
    assert take_messages() == [(TASK, [str(payout_ids[0])])]
    # when: the broker is back
    monkeypatch.setattr(dispatcher.process_payout, "apply_async", publish)
    dispatch(ledger)
    # then: all three are enqueued (the first again: harmless) and tracked
    assert take_messages() == [(TASK, [str(p)]) for p in payout_ids]
    assert dispatcher_position() == ledger.recorder.max_notification_id()
