"""manage.py verify_ledger: replay every stream and check it; exit 1 on any discrepancy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.apps import get_payouts
from projections.audit import verify
from projections.checkpoints import Anchor, parse_anchor, public_keys, read_anchors
from projections.database import EventTable
from projections.management.commands._options import (
    add_position_range,
    progress_bar,
)


def anchor(text: str) -> Anchor:
    try:
        return parse_anchor(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = (
        "Check the hash chain, versions and transitions of every stream, the signed "
        "checkpoint chain (unbroken, recent, matching the ledger, and any anchors), "
        "and that the projection equals a replay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_position_range(
            parser,
            after="only streams with an event after this position",
            until="only streams with an event at or before this position",
        )
        parser.add_argument(
            "--public-key",
            type=Path,
            help="a file with the checkpoint public key(s), PEM or base64; instead "
            "of CHECKPOINT_PUBLIC_KEY",
        )
        parser.add_argument(
            "--anchor",
            type=anchor,
            action="append",
            default=[],
            metavar="SEQ:DIGEST",
            help="a checkpoint digest published outside the database; it must still "
            "be in the chain (repeatable)",
        )
        parser.add_argument(
            "--anchors",
            type=Path,
            help="a file of anchors, one SEQ:DIGEST first on each line (the "
            "checkpointer's CHECKPOINT_LOG_FILE, or a published copy)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        after, until = options["after"], options["until"]
        anchors = list(options["anchor"])
        try:
            if options["anchors"]:
                anchors += read_anchors(options["anchors"].read_text().splitlines())
            keys = (
                public_keys(options["public_key"].read_text())
                if options["public_key"]
                else None
            )
        except (OSError, ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc), returncode=2) from None
        if anchors and (after is not None or until is not None):
            raise CommandError(
                "--anchor needs a full run (no --after/--until)", returncode=2
            )
        total = EventTable(payouts).count_streams(after, until)
        try:
            with progress_bar(total, "stream") as bar:
                report = verify(
                    payouts,
                    after=after,
                    until=until,
                    batch=options["batch_size"],
                    progress=bar.update,
                    public_keys=keys,
                    anchors=anchors,
                )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        for note in report.notes:
            self.stdout.write(f"note: {note}")
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
