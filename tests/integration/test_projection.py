"""PayoutViewProjection through runner.catch_up, on the test database and event store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.db import transaction

from projections.models import PayoutView
from projections.projectors import PayoutViewProjection
from projections.runner import catch_up, drain
from tests.builders import WORKER, create, make_histories
from tests.support import last_notification_id, projection_position, view_rows

if TYPE_CHECKING:
    from ledger.application import Payouts
    from projections.runner import Batch

VISA = "4242424242424242"
NAME = PayoutViewProjection.name


class Exploding(PayoutViewProjection):
    """Writes its rows, then fails: as a bug or a lost database would, mid-batch."""

    def __init__(self, after_batches: int = 0) -> None:
        self.after_batches = after_batches

    def handle(self, batch: Batch) -> None:
        super().handle(batch)
        if self.after_batches == 0:
            raise RuntimeError("projection bug")
        self.after_batches -= 1


def test_catching_up_writes_one_row_per_payout(ledger: Payouts, project: Any) -> None:
    # given
    ids = make_histories(ledger)
    # when
    project()
    # then
    statuses = dict(PayoutView.objects.values_list("id", "status"))
    assert statuses == dict(
        zip(
            ids,
            ["pending", "processing", "completed", "failed", "cancelled", "pending"],
            strict=True,
        )
    )


def test_a_row_carries_the_latest_version_and_failure(
    ledger: Payouts, project: Any
) -> None:
    # given
    payout_id = create(ledger)
    ledger.start_processing(payout_id, actor=WORKER)
    failed = ledger.fail(payout_id, code="card_declined", message="No.", actor=WORKER)
    # when
    project()
    # then
    row = PayoutView.objects.get(id=payout_id)
    assert (row.version, row.failure_code, row.failure_message) == (
        3,
        "card_declined",
        "No.",
    )
    assert row.updated_at == failed.updated_at
    assert row.created_at == failed.created_at


def test_a_row_never_holds_the_full_card_number(ledger: Payouts, project: Any) -> None:
    # given
    create(ledger)
    # when
    project()
    # then
    (row,) = view_rows()
    assert row["recipient"]["number"] == "424242******4242"
    assert VISA not in str(row)


def test_the_position_advances_to_the_last_event_applied(
    ledger: Payouts, project: Any
) -> None:
    # given
    make_histories(ledger)
    # when
    applied = project()
    # then
    assert applied == 12
    assert projection_position() == last_notification_id(ledger)


def test_a_batch_advances_the_position_only_past_its_own_events(
    ledger: Payouts,
) -> None:
    # given
    for _ in range(3):
        create(ledger)
    notifications = ledger.recorder.select_notifications(start=None, limit=10)
    # when
    applied = catch_up(ledger, PayoutViewProjection(), batch_size=2)
    # then
    assert applied == 2
    assert projection_position() == notifications[1].id
    assert PayoutView.objects.count() == 2


def test_catching_up_with_nothing_new_changes_nothing(
    ledger: Payouts, project: Any
) -> None:
    # given
    create(ledger)
    project()
    before = (view_rows(), projection_position())
    # when
    applied = project()
    # then
    assert applied == 0
    assert (view_rows(), projection_position()) == before


def test_an_error_in_the_handler_rolls_back_rows_and_position(
    ledger: Payouts,
) -> None:
    # given
    create(ledger)
    create(ledger)
    # when
    with pytest.raises(RuntimeError):
        catch_up(ledger, Exploding())
    # then
    assert PayoutView.objects.count() == 0
    assert projection_position() == 0


def test_an_error_in_a_later_batch_keeps_the_earlier_batches(ledger: Payouts) -> None:
    # given
    ids = [create(ledger) for _ in range(3)]
    follower = Exploding(after_batches=1)
    # when
    with pytest.raises(RuntimeError):
        drain(ledger, follower, batch_size=2)
    # then
    assert set(PayoutView.objects.values_list("id", flat=True)) == set(ids[:2])
    assert (
        projection_position()
        == ledger.recorder.select_notifications(start=None, limit=2)[1].id
    )


def test_the_projection_resumes_where_an_error_stopped_it(
    ledger: Payouts, project: Any
) -> None:
    # given
    ids = [create(ledger) for _ in range(3)]
    with pytest.raises(RuntimeError):
        drain(ledger, Exploding(after_batches=1), batch_size=2)
    # when
    project()
    # then
    assert set(PayoutView.objects.values_list("id", flat=True)) == set(ids)
    assert projection_position() == last_notification_id(ledger)


def test_replaying_a_batch_changes_nothing(ledger: Payouts, project: Any) -> None:
    # given
    make_histories(ledger)
    project()
    before = view_rows()
    notifications = ledger.recorder.select_notifications(start=None, limit=100)
    batch = [(ledger.mapper.to_domain_event(n), n.id) for n in notifications]
    # when
    with transaction.atomic():
        PayoutViewProjection().handle(batch)
    # then
    assert view_rows() == before


def test_replaying_an_old_event_never_moves_a_row_back(
    ledger: Payouts, project: Any
) -> None:
    # given
    payout_id = create(ledger)
    ledger.start_processing(payout_id, actor=WORKER)
    ledger.complete(payout_id, gateway_reference="ch_1", actor=WORKER)
    project()
    started = ledger.recorder.select_notifications(start=None, limit=100)[1]
    # when
    with transaction.atomic():
        PayoutViewProjection().handle(
            [(ledger.mapper.to_domain_event(started), started.id)]
        )
    # then
    row = PayoutView.objects.get(id=payout_id)
    assert (row.status, row.version) == ("completed", 3)


def test_recording_a_position_already_passed_is_refused(
    ledger: Payouts, project: Any
) -> None:
    # given
    create(ledger)
    create(ledger)
    project()
    first = ledger.recorder.select_notifications(start=None, limit=1)[0]
    # when
    from eventsourcing.persistence import IntegrityError, Tracking

    from projections.tracking import DjangoTrackingRecorder

    with pytest.raises(IntegrityError), transaction.atomic():
        DjangoTrackingRecorder(NAME).insert_tracking(Tracking(ledger.name, first.id))
    # then
    assert projection_position() == last_notification_id(ledger)
