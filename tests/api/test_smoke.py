from __future__ import annotations

from tests.builders import card_payout


def test_a_created_payout_is_listed_after_projection(staff_client, project) -> None:
    # given
    created = staff_client.post("/api/v1/payouts/", card_payout(), format="json")
    # when
    project()
    listed = staff_client.get("/api/v1/payouts/")
    # then
    assert created.status_code == 201
    assert [p["id"] for p in listed.json()["results"]] == [created.json()["id"]]
    assert (
        listed.json()["results"][0]["recipient_details"]["number"] == "424242******4242"
    )
