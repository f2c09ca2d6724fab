"""The operator admin: read-only projection, history from the event store, cancel via the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api.models import ApiKey
from projections.models import PayoutView
from tests.conftest import TEST_ACTOR, new_payout
from workers import attempts

if TYPE_CHECKING:
    from ledger.application import Payouts


@pytest.fixture
def operator(db: Any) -> Client:
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(db: Any) -> Client:
    user = User.objects.create_superuser("root", password="pw")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def create(ledger: Payouts, **overrides: Any) -> str:
    return str(
        ledger.create_payout(new_payout(**overrides), actor=TEST_ACTOR).payout.id
    )


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
    searched = operator.get("/admin/projections/payoutview/", {"q": payout_id})
    # then
    assert filtered.status_code == 200 and b"USD" in filtered.content
    assert searched.status_code == 200 and payout_id.encode() in searched.content


def test_the_detail_page_shows_the_event_history_from_the_event_store(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given
    payout_id = create(ledger)
    ledger.start_processing(payout_id=UUID(payout_id), actor=TEST_ACTOR)
    project()
    # when
    page = operator.get(f"/admin/projections/payoutview/{payout_id}/change/")
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
    response = operator.post(
        "/admin/projections/payoutview/",
        {"action": "cancel_payouts", "_selected_action": [pending]},
        follow=True,
    )
    # then: the ledger holds the Cancelled event; the projection follows from the log
    assert response.status_code == 200
    assert [r.type for r in ledger.history(UUID(pending))] == ["Created", "Cancelled"]
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
    ledger.start_processing(UUID(doubtful), actor=TEST_ACTOR)
    project()
    attempts.in_doubt(UUID(doubtful), "ReadTimeout")
    for _ in range(attempts.POISON_AFTER):
        attempts.failed(UUID(parked), "ValueError: cannot encode")
    # when
    in_doubt = operator.get("/admin/projections/payoutview/", {"attention": "in_doubt"})
    parked_list = operator.get(
        "/admin/projections/payoutview/", {"attention": "parked"}
    )
    detail = operator.get(f"/admin/projections/payoutview/{doubtful}/change/")
    # then
    assert doubtful.encode() in in_doubt.content and b"in doubt" in in_doubt.content
    assert parked.encode() not in in_doubt.content
    assert fine.encode() not in in_doubt.content
    assert parked.encode() in parked_list.content and b"parked" in parked_list.content
    assert doubtful.encode() not in parked_list.content
    assert b"In doubt since" in detail.content and b"ReadTimeout" in detail.content


def test_readyz_and_metrics_report_payouts_in_doubt_and_parked(
    operator: Client, ledger: Payouts, project: Any
) -> None:
    # given: one payout in processing whose last call had no answer, and one whose
    # flag outlived its final status (a worker killed before it could clear it)
    doubtful, completed = UUID(create(ledger)), UUID(create(ledger))
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
