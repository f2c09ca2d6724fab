"""Request ids in logs and responses, and the request counter for /metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from ledger.logcontext import bound

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("api.requests")

REQUESTS = Counter("http_requests_total", "HTTP requests served.", ["method", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        # An attribute of this project's: HttpRequest (in the stubs) declares no such.
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        with bound(request_id=request_id):
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            response["X-Request-ID"] = request_id
            REQUESTS.labels(request.method, str(response.status_code)).inc()
            LATENCY.labels(request.method).observe(elapsed)
            if response.status_code >= 500:
                logger.error(
                    "%s %s -> %s", request.method, request.path, response.status_code
                )
        return response
