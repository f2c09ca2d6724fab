"""manage.py checkpoint: sign a digest of every stream head at the current position."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from ledger.apps import get_payouts
from projections.audit import take_checkpoint
from projections.eventtable import EventTable


class Command(BaseCommand):
    help = "Record a signed checkpoint over all stream heads (AUDIT_HMAC_KEY)."

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        total = EventTable(payouts).count_streams()
        with tqdm(total=total, unit="stream", disable=not sys.stderr.isatty()) as bar:
            checkpoint = take_checkpoint(payouts, progress=bar.update)
        self.stdout.write(
            f"checkpoint {checkpoint.pk}: position {checkpoint.position}, "
            f"{checkpoint.streams} streams, {checkpoint.events} events\n"
            f"digest {checkpoint.digest}\nsignature {checkpoint.signature}"
        )
