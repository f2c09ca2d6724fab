"""The operator admin: read-only projection, history from the event store, the
dashboard, and the actions that go through the ledger (cancel, resolve, re-drive)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from api.models import ApiKey
from projections.models import PayoutView
from tests.builders import TEST_ACTOR, create
from workers import attempts, tasks
from workers.gateway import get_gateway

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts


def logged_in(user: User) -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


@pytest.fixture
def operator(db: Any) -> Client:
    return logged_in(User.objects.create_user("operator", is_staff=True))


@pytest.fixture
def admin_client_(db: Any) -> Client:
    return logged_in(User.objects.create_superuser("root", password="pw"))


@pytest.fixture
def processing(ledger: Payouts, project: Any) -> UUID:
    """A payout in processing, projected."""
    payout_id = create(ledger)
    ledger.start_processing(payout_id, actor=TEST_ACTOR)
    project()
    return payout_id


def run_action(operator: Client, action: str, *payout_ids: UUID) -> list[str]:
    """Run an admin action on these payouts; the messages it answered with."""
    response = operator.post(
        "/admin/projections/payoutview/",
        {"action": action, "_selected_action": [str(i) for i in payout_ids]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def listed(page: Any, payout_id: UUID) -> bool:
    """The page shows this payout's id."""
    return str(payout_id).encode() in page.content


def test_the_payout_list_shows_projected_payouts_masked(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given
    create(ledger)
    project()
    # when
    page = operator.get("/admin/projections/payoutview/")
    # then
    assert page.status_code == 200
    assert b"4242424242424242" not in page.content


def test_the_payout_list_filters_and_searches(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given
    payout_id = create(ledger)
    create(ledger, currency="USD")
    project()
    # when
    filtered = operator.get("/admin/projections/payoutview/", {"currency": "USD"})
    searched = operator.get("/admin/projections/payoutview/", {"q": str(payout_id)})
    # then
    assert filtered.status_code == 200 and b"USD" in filtered.content
    assert searched.status_code == 200 and listed(searched, payout_id)


def test_the_detail_page_shows_the_event_history_from_the_event_store(
    operator: Client, processing: UUID
) -> None:
    # when
    page = operator.get(f"/admin/projections/payoutview/{processing}/change/")
    # then
    assert page.status_code == 200
    assert b"ProcessingStarted" in page.content
    assert b"424242******4242" in page.content
    assert b"4242424242424242" not in page.content


def test_the_cancel_action_cancels_pending_payouts_through_the_ledger(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given
    pending = create(ledger)
    project()
    # when
    run_action(operator, "cancel_payouts", pending)
    # then: the ledger holds the Cancelled event; the projection follows from the log
    assert [r.type for r in ledger.history(pending)] == ["Created", "Cancelled"]
    assert PayoutView.objects.get(id=pending).status == "pending"
    project()
    assert PayoutView.objects.get(id=pending).status == "cancelled"


def test_the_projection_cannot_be_edited_in_the_admin(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given
    payout_id = create(ledger)
    project()
    # when
    response = operator.post(
        f"/admin/projections/payoutview/{payout_id}/change/", {"status": "completed"}
    )
    # then
    assert response.status_code == 403
    assert PayoutView.objects.get(id=payout_id).status == "pending"


def test_an_api_key_made_in_the_admin_is_shown_once_and_stored_hashed(
    admin_client_: Client,
) -> None:
    # given
    owner = User.objects.create_user("machine", is_staff=True)
    # when
    response = admin_client_.post(
        "/admin/api/apikey/add/", {"user": owner.pk, "name": "erp"}, follow=True
    )
    # then
    key = ApiKey.objects.get(user=owner)
    shown = [str(m) for m in response.context["messages"]]
    assert any(key.prefix in m for m in shown)
    plain = next(m for m in shown if key.prefix in m).rsplit(" ", 1)[1]
    assert plain.startswith(key.prefix + ".")
    assert plain not in (key.hashed_key, key.prefix)


def test_payouts_in_doubt_and_parked_are_shown_and_filtered_for_operators(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given: one payout whose last gateway call had no answer, one parked, one fine
    doubtful, parked, fine = create(ledger), create(ledger), create(ledger)
    ledger.start_processing(doubtful, actor=TEST_ACTOR)
    project()
    attempts.in_doubt(doubtful, "ReadTimeout")
    for _ in range(attempts.POISON_AFTER):
        attempts.failed(parked, "ValueError: cannot encode")
    # when
    in_doubt = operator.get("/admin/projections/payoutview/", {"attention": "in_doubt"})
    parked_list = operator.get(
        "/admin/projections/payoutview/", {"attention": "parked"}
    )
    detail = operator.get(f"/admin/projections/payoutview/{doubtful}/change/")
    # then
    assert listed(in_doubt, doubtful) and b"in doubt" in in_doubt.content
    assert not listed(in_doubt, parked)
    assert not listed(in_doubt, fine)
    assert listed(parked_list, parked) and b"parked" in parked_list.content
    assert not listed(parked_list, doubtful)
    assert b"In doubt since" in detail.content and b"ReadTimeout" in detail.content


def test_readyz_and_metrics_report_payouts_in_doubt_and_parked(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given: one payout in processing whose last call had no answer, and one whose
    # flag outlived its final status (a worker killed before it could clear it)
    doubtful, completed = create(ledger), create(ledger)
    for payout_id in (doubtful, completed):
        ledger.start_processing(payout_id, actor=TEST_ACTOR)
        attempts.in_doubt(payout_id, "ReadTimeout")
    ledger.complete(completed, gateway_reference="ch_1", actor=TEST_ACTOR)
    project()
    # when
    ready = operator.get("/readyz").json()["checks"]["payouts"]
    metrics = operator.get("/metrics").content.decode()
    # then
    assert (ready["in_doubt"], ready["parked"]) == (1, 0)
    assert "payouts_in_doubt 1.0" in metrics
    assert "payouts_parked 0.0" in metrics


def test_resolving_an_in_doubt_payout_records_the_gateways_answer_as_the_operator(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given: a payout charged at the provider whose answer the worker never got
    payout_id = create(ledger)
    order = ledger.start_processing(payout_id, actor=TEST_ACTOR)
    get_gateway().pay(order)
    attempts.in_doubt(payout_id, "ReadTimeout")
    project()
    # when
    shown = run_action(operator, "resolve_in_doubt", payout_id)
    # then: completed from the provider's record, once, by the operator
    assert any("completed, from the gateway's record" in m for m in shown), shown
    history = ledger.history(payout_id)
    assert [r.type for r in history][-1] == "Completed"
    assert (history[-1].actor["type"], history[-1].actor["id"]) == ("user", "operator")
    assert get_gateway().calls.count(payout_id) == 1  # type: ignore[attr-defined]
    assert not attempts.PayoutAttempt.objects.get(payout_id=payout_id).in_doubt_since


def test_resolving_a_payout_the_gateway_never_charged_records_nothing(
    operator: Client, ledger: Payouts, processing: UUID
) -> None:
    # when
    shown = run_action(operator, "resolve_in_doubt", processing)
    # then
    assert any("holds no charge" in m for m in shown), shown
    assert [r.type for r in ledger.history(processing)] == [
        "Created",
        "ProcessingStarted",
    ]


def test_re_driving_an_overdue_pending_payout_starts_it_as_the_operator_and_queues_it(
    operator: Client,
    ledger: Payouts,
    project: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a pending payout whose task was lost, and a parked one in processing
    lost, parked = create(ledger), create(ledger)
    ledger.start_processing(parked, actor=TEST_ACTOR)
    attempts.park(parked, "ValueError: cannot encode")
    project()
    queued: list[list[str]] = []
    monkeypatch.setattr(
        tasks.process_payout, "apply_async", lambda args, **_: queued.append(args)
    )
    # when
    run_action(operator, "redrive", lost, parked)
    # then
    history = ledger.history(lost)
    assert [r.type for r in history] == ["Created", "ProcessingStarted"]
    assert history[-1].actor["id"] == "operator"
    assert sorted(queued) == sorted([[str(lost)], [str(parked)]])
    assert not attempts.PayoutAttempt.objects.get(payout_id=parked).parked_at


def test_the_dashboard_shows_statuses_attention_lag_and_charts(
    operator: Client, ledger: Payouts, project: Any, settings: Any
) -> None:
    # given: two pending payouts (one overdue), one completed, one in doubt
    settings.STUCK_PAYOUT_AFTER = 60
    pending, overdue = create(ledger), create(ledger)
    done, doubtful = create(ledger), create(ledger)
    for payout_id in (done, doubtful):
        ledger.start_processing(payout_id, actor=TEST_ACTOR)
    ledger.complete(done, gateway_reference="ch_1", actor=TEST_ACTOR)
    attempts.in_doubt(doubtful, "ReadTimeout")
    project()
    PayoutView.objects.filter(id=overdue).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    # when
    page = operator.get("/admin/")
    # then
    figures = page.context["dashboard"]
    counts = {s["status"]: s["count"] for s in figures["statuses"]}
    assert counts == {
        "pending": 2,
        "processing": 1,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
    }
    attention = {a["title"]: a["count"] for a in figures["attention"]}
    assert attention == {"In doubt": 1, "Overdue": 1}
    assert figures["lag"]["projection"] == "caught up"
    hour = json.loads(figures["hour"])
    assert len(hour["labels"]) == 60
    created, settled = hour["datasets"]
    assert sum(created["data"]) == 4 and sum(settled["data"]) == 1
    assert b'data-type="bar"' in page.content
    overdue_list = operator.get(
        "/admin/projections/payoutview/", {"attention": "overdue"}
    )
    assert listed(overdue_list, overdue)
    assert not listed(overdue_list, pending)
