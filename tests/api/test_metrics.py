"""/metrics: restricted by METRICS_TOKEN when it is set, and a scrape costs a fixed,
small number of queries and never reads or decrypts an event."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from ledger.cipher import RotatingCipher
from tests.api.support import assert_problem
from tests.builders import TEST_ACTOR, new_payout

if TYPE_CHECKING:
    from ledger.application import Payouts

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def metrics_token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(**headers: str) -> Any:
    return Client().get("/metrics", **headers)


def test_without_a_token_setting_metrics_answer_anyone(ledger: Payouts) -> None:
    # when
    response = scrape()
    # then
    assert response.status_code == 200
    assert b"payouts_created" in response.content


def test_with_a_token_setting_a_scrape_with_the_token_is_answered(
    ledger: Payouts, metrics_token: str
) -> None:
    # when
    response = scrape(HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"projection_lag_seconds" in response.content


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Token {TOKEN}",
        "Basic " + base64.b64encode(f"metrics:{TOKEN}".encode()).decode(),
        "Bearer tökén",
    ],
    ids=["none", "wrong", "longer", "shorter", "empty", "scheme", "basic", "non-ascii"],
)
def test_with_a_token_setting_any_other_scrape_is_a_401_problem(
    ledger: Payouts, metrics_token: str, authorization: str | None
) -> None:
    # when
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = scrape(**headers)
    # then
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"payouts_created" not in response.content


def test_a_scrape_runs_a_bounded_number_of_queries_and_decrypts_nothing(
    ledger: Payouts,
    project: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_max_num_queries: Any,
) -> None:
    # given: projected payouts, one more the projector has not reached, and no way
    # for the scrape to decrypt an event or walk the notification log
    for _ in range(3):
        ledger.create_payout(new_payout(), actor=TEST_ACTOR)
    project()
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a scrape read the event store")

    monkeypatch.setattr(RotatingCipher, "decrypt", refuse)
    monkeypatch.setattr(ledger.recorder, "select_notifications", refuse)
    monkeypatch.setattr(ledger.mapper, "to_domain_event", refuse)
    # when
    # (4 for the payouts, 3 for the webhooks: deliveries, disabled endpoints, the
    # webhook follower's tracking row)
    with django_assert_max_num_queries(7):
        response = scrape()
    # then
    assert response.status_code == 200
    assert b'payouts{status="pending"} 3.0' in response.content
