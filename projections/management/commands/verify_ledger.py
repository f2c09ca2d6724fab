"""manage.py verify_ledger: replay every stream and check it; exit 1 on any discrepancy."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ledger.apps import get_payouts
from projections.audit import verify
from projections.eventtable import EventTable


class Command(BaseCommand):
    help = (
        "Check the hash chain, versions and transitions of every stream, the signed "
        "checkpoints, and that the projection equals a replay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--after", type=int, help="only streams with an event after this position"
        )
        parser.add_argument(
            "--until",
            type=int,
            help="only streams with an event at or before this position",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        after, until = options["after"], options["until"]
        total = EventTable(payouts).count_streams(after, until)
        with tqdm(total=total, unit="stream", disable=not sys.stderr.isatty()) as bar:
            report = verify(
                payouts,
                after=after,
                until=until,
                batch=options["batch_size"],
                progress=bar.update,
            )
        self.stdout.write(
            f"verified {report.streams} streams, {report.events} events, "
            f"{report.checkpoints} checkpoints in {report.seconds:.2f}s"
            + (
                f" ({report.unprojected} not yet projected)"
                if report.unprojected
                else ""
            )
        )
        if report.legacy:
            self.stdout.write(
                f"{report.legacy} legacy-format streams (written before events were "
                "bound to their stream and chains seeded with the payout id): checked "
                "for byte-for-byte copies and by the checkpoints only"
            )
        if report.discrepancy is not None:
            found = report.discrepancy
            self.stdout.write(f"FIRST DISCREPANCY: {found}")
            raise CommandError(f"ledger verification failed: {found}", returncode=1)
        self.stdout.write("OK: no discrepancy")
