"""Worker-side metrics. With PROMETHEUS_MULTIPROC_DIR set, /metrics aggregates them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROCESSING_SECONDS = Histogram(
    "payout_processing_seconds",
    "Seconds from a payout's creation to its final status, as seen by the worker.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
GATEWAY_ERRORS = Counter(
    "payout_gateway_errors_total",
    "Gateway calls that failed transiently (retried) or permanently.",
    ["kind"],
)
TAMPERED_PAYOUTS = Counter(
    "payout_tampered_refused_total",
    "Payouts the worker refused to pay because their stored events are forged "
    "(copied, moved or relabelled rows).",
)
