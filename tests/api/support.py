"""HTTP-level helpers: the API's paths, problem documents, posting a payout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.builders import card_payout

if TYPE_CHECKING:
    from uuid import UUID

    from django.http import HttpResponse
    from rest_framework.test import APIClient

PAYOUTS = "/api/v1/payouts/"
EVENTS = "/api/v1/events/"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "errors"}


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


def post_payout(client: APIClient, body: Any = None, **headers: str) -> HttpResponse:
    return client.post(
        PAYOUTS, card_payout() if body is None else body, format="json", **headers
    )
