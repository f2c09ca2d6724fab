"""The sender's counters; /metrics aggregates them through PROMETHEUS_MULTIPROC_DIR.
Only the webhooks process imports this module (a metric made in a process whose
multiprocess directory does not exist yet fails)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "webhook_attempts_total",
    "Webhook delivery attempts, by outcome (succeeded, failed).",
    ["outcome"],
)
LATENCY = Histogram(
    "webhook_attempt_seconds",
    "Seconds from the start of a webhook attempt to its answer (or error).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENDPOINTS_DISABLED = Counter(
    "webhook_endpoints_disabled_total",
    "Endpoints disabled after a delivery failed for the whole retry window.",
)


def observe(outcome: Any, delivery: Any) -> None:
    ATTEMPTS.labels(outcome="succeeded" if outcome.succeeded else "failed").inc()
    LATENCY.observe(outcome.latency_ms / 1000)
