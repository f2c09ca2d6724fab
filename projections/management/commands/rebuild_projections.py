"""manage.py rebuild_projections: rebuild PayoutView beside the live table, check it
against a replay of the event store, swap it in. Exits non-zero on any failure."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ledger.apps import get_payouts
from projections.rebuild import SHADOW_TABLE, RebuildError, rebuild
from projections.replay import Discrepancy

UNITS = {"project": "event", "check": "payout"}


class Command(BaseCommand):
    help = (
        "Rebuild the payout read model from the first event into a shadow table, "
        "check it against a replay of the event store, then swap it in atomically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=30.0,
            help="seconds the swap may wait for a table or the projector (30)",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="never show a progress bar"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        show = not options["no_progress"] and sys.stderr.isatty()

        def progress(phase: str, total: int) -> tqdm[Any]:
            return tqdm(
                total=total,
                desc=phase,
                unit=UNITS.get(phase, "it"),
                unit_scale=True,
                file=sys.stderr,
                disable=not show,
            )

        try:
            summary = rebuild(
                get_payouts(),
                batch_size=options["batch_size"],
                progress=progress,
                lock_timeout=options["lock_timeout"],
            )
        except (RebuildError, Discrepancy) as exc:
            kept = (
                f"; the shadow table {SHADOW_TABLE} is kept for inspection"
                if isinstance(exc, Discrepancy)
                else ""
            )
            raise CommandError(
                f"rebuild aborted, nothing swapped: {exc}{kept}"
            ) from exc
        self.stdout.write(
            f"rebuilt the payout view: {summary.events} events, "
            f"{summary.payouts} payouts, {summary.seconds:.1f}s, "
            f"{summary.events_per_second:.0f} events/s (position {summary.position})"
        )
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in summary.phases.items())
        self.stdout.write(f"phases: {phases}")
