"""/api/v1/webhook_endpoints/ and webhook_deliveries/: staff manage endpoints, the
secret is shown once, deliveries are listed with their attempts and re-sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections.runner import drain
from tests.builders import paid_payout
from webhooks.follower import WebhookFollower
from webhooks.models import WebhookAttempt, WebhookDelivery

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from ledger.application import Payouts

BASE = "/api/v1/webhook_endpoints/"
URL = "https://93.184.215.14/hooks"


def create(client: APIClient, **body: Any) -> Any:
    return client.post(BASE, {"url": URL, **body}, format="json")


def test_creating_an_endpoint_shows_its_secret_once(staff_client: APIClient) -> None:
    # when
    response = create(staff_client, event_types=["payout.completed"])
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["payout.completed"] and body["enabled"] is True
    read = staff_client.get(f"{BASE}{body['id']}/").json()
    assert "secret" not in read and read["url"] == URL
    assert "secret" not in staff_client.get(BASE).json()[0]


def test_event_types_default_to_every_payout_event(staff_client: APIClient) -> None:
    body = create(staff_client).json()
    assert body["event_types"] == [
        "payout.created",
        "payout.processing",
        "payout.completed",
        "payout.failed",
        "payout.cancelled",
    ]


def test_loopback_and_plain_http_in_production_are_refused(
    staff_client: APIClient, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = create(staff_client, url="http://127.0.0.1:9000/hooks")
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    settings.WEBHOOK_ALLOW_HTTP = False
    response = create(staff_client, url="http://93.184.215.14/hooks")
    assert response.status_code == 400 and "url" in response.json()["errors"]


def test_unknown_event_types_and_fields_are_refused(staff_client: APIClient) -> None:
    response = create(staff_client, event_types=["payout.exploded"])
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["event_types.0"]
    response = create(staff_client, colour="red")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["colour"]


def test_an_endpoint_is_updated_and_deleted(staff_client: APIClient) -> None:
    endpoint = create(staff_client).json()
    path = f"{BASE}{endpoint['id']}/"
    response = staff_client.patch(
        path, {"description": "ops", "enabled": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["description"] == "ops"
    assert response.json()["enabled"] is False
    assert response.json()["disabled_reason"]
    assert staff_client.delete(path).status_code == 204
    assert staff_client.get(path).status_code == 404


def test_rotating_the_secret_keeps_the_previous_one_for_the_overlap(
    staff_client: APIClient,
) -> None:
    endpoint = create(staff_client).json()
    response = staff_client.post(
        f"{BASE}{endpoint['id']}/rotate_secret/",
        {"overlap_seconds": 3600},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["secret"] != endpoint["secret"]
    assert response.json()["previous_secret_expires_at"] is not None


def test_auditors_and_others_may_not_manage_endpoints(
    auditor_client: APIClient,
) -> None:
    assert auditor_client.get(BASE).status_code == 403
    assert create(auditor_client).status_code == 403


def test_deliveries_are_listed_with_their_attempts_and_can_be_resent(
    staff_client: APIClient, ledger: Payouts
) -> None:
    # given: an endpoint with three deliveries, one attempted and succeeded
    endpoint = create(staff_client).json()
    paid_payout(ledger)
    drain(ledger, WebhookFollower(ledger))
    first = WebhookDelivery.objects.get(version=1)
    WebhookAttempt.objects.create(
        delivery=first, succeeded=True, status_code=204, latency_ms=12
    )
    WebhookDelivery.objects.filter(pk=first.pk).update(status="succeeded", attempts=1)
    # when
    page = staff_client.get(f"{BASE}{endpoint['id']}/deliveries/", {"limit": 2}).json()
    # then: newest first, with a next page
    assert [d["version"] for d in page["results"]] == [3, 2]
    rest = staff_client.get(page["next"]).json()
    assert [d["version"] for d in rest["results"]] == [1]
    attempt = rest["results"][0]["attempts"][0]
    assert attempt["status_code"] == 204 and attempt["latency_ms"] == 12
    assert rest["results"][0]["payload"]["data"]["version"] == 1
    # when
    response = staff_client.post(f"/api/v1/webhook_deliveries/{first.pk}/resend/")
    # then
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert (
        staff_client.post("/api/v1/webhook_deliveries/msg_x/resend/").status_code == 404
    )


def test_a_bad_delivery_filter_is_a_400_naming_it(staff_client: APIClient) -> None:
    endpoint = create(staff_client).json()
    response = staff_client.get(
        f"{BASE}{endpoint['id']}/deliveries/",
        {"status": "lost", "before": "x", "payout_id": "nope"},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "before", "payout_id"}
