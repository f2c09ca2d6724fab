from __future__ import annotations

from tests.api.support import PAYOUTS, listed_ids, post_payout


def test_a_created_payout_is_listed_after_projection(staff_client, project) -> None:
    # given
    created = post_payout(staff_client)
    # when
    project()
    listed = staff_client.get(PAYOUTS)
    # then
    assert created.status_code == 201
    assert listed_ids(listed) == [created.json()["id"]]
    assert (
        listed.json()["results"][0]["recipient_details"]["number"] == "424242******4242"
    )
