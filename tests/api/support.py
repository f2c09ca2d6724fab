"""HTTP-level helpers: the API's paths, problem documents, clients, posting and
seeding payouts, reading list pages and NDJSON bodies."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from rest_framework.test import APIClient

from tests.builders import SEEDER, card_payout, new_payout

if TYPE_CHECKING:
    from uuid import UUID

    from django.http import HttpResponse

    from ledger.application import Payouts

PAYOUTS = "/api/v1/payouts/"
EVENTS = "/api/v1/events/"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "errors"}
SOME_ID = "0b6f6a4e-8a36-4a52-a0b3-2ab1d0c7f9d1"
"""A well-formed payout id that no test creates."""
LIST_PARAMETERS = (
    "status",
    "currency",
    "created_after",
    "created_before",
    "amount_min",
    "amount_max",
    "ordering",
    "cursor",
    "limit",
)
"""The query parameters of GET payouts/ (SPEC.md), `as_of` aside."""


def detail_url(payout_id: str | UUID) -> str:
    return f"{PAYOUTS}{payout_id}/"


def history_url(payout_id: str | UUID) -> str:
    return f"{PAYOUTS}{payout_id}/history/"


def assert_problem(response: HttpResponse, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; returns it."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status
    assert isinstance(body["errors"], dict)
    return body


def assert_invalid(response: HttpResponse, *fields: str) -> dict[str, Any]:
    """A 400 problem whose `errors` name exactly these fields, each with messages."""
    problem = assert_problem(response, 400)
    assert sorted(problem["errors"]) == sorted(fields), problem
    for messages in problem["errors"].values():
        assert messages and all(isinstance(m, str) and m for m in messages), problem
    return problem


# Clients


def basic(username: str, password: str) -> str:
    """An Authorization header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def bearer_client(key: str, **defaults: Any) -> APIClient:
    """A client that sends this API key (`defaults` as for APIClient, e.g. REMOTE_ADDR)."""
    client = APIClient(**defaults)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# Payouts


def post_payout(client: APIClient, body: Any = None, **headers: str) -> HttpResponse:
    return client.post(
        PAYOUTS, card_payout() if body is None else body, format="json", **headers
    )


def seed_payouts(ledger: Payouts, count: int) -> None:
    """`count` pending card payouts, straight into the ledger (no request each)."""
    for _ in range(count):
        ledger.create_payout(new_payout(), actor=SEEDER)


# Reading answers


def listed_ids(response: HttpResponse) -> list[str]:
    """The ids on a page of GET payouts/, in order."""
    return [p["id"] for p in response.json()["results"]]


def ndjson(response: Any) -> list[dict[str, Any]]:
    """The objects of a streamed NDJSON body, in order."""
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]
