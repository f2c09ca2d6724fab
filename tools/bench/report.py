"""Medians over rounds, service/baseline ratios and the side-by-side table: pure
functions, no I/O, so the report is tested without running anything."""

from __future__ import annotations

import statistics
from typing import Any


def median(values: list[float | None]) -> float | None:
    """The median of the values that were measured (a failed round is None)."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def ratio(service: float | None, baseline: float | None) -> float | None:
    """service / baseline; None when either side is missing or the baseline is 0."""
    if service is None or not baseline:
        return None
    return round(service / baseline, 3)


def figure(
    label: str,
    unit: str,
    baseline: list[float | None] | None,
    service: list[float | None],
) -> dict[str, Any]:
    """One row of the table: the rounds of each side, their medians and the ratio
    of the medians. `baseline` None: a figure of the service alone."""
    base = median(baseline) if baseline is not None else None
    serv = median(service)
    return {
        "label": label,
        "unit": unit,
        "baseline": base,
        "service": serv,
        "ratio": ratio(serv, base),
        "baseline_rounds": baseline,
        "service_rounds": service,
    }


def _cell(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".rstrip()


def table(figures: list[dict[str, Any]]) -> str:
    """figure | baseline | service | service/baseline, one line per figure."""
    rows = [("figure", "baseline", "service", "ratio")]
    for fig in figures:
        rows.append(
            (
                fig["label"],
                _cell(fig["baseline"], fig["unit"]),
                _cell(fig["service"], fig["unit"]),
                "-" if fig["ratio"] is None else f"{fig['ratio']:.2f}x",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        lines.append(
            "  ".join(
                [row[0].ljust(widths[0])]
                + [row[i].rjust(widths[i]) for i in range(1, 4)]
            )
        )
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
