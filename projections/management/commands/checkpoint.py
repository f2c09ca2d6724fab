"""manage.py checkpoint: sign the next checkpoint of the chain (needs the private key)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ledger.apps import get_payouts
from projections.audit import take_checkpoint
from projections.checkpoints import RefusedToSign
from projections.database import EventTable
from projections.management.commands._options import progress_bar


class Command(BaseCommand):
    help = (
        "Sign a checkpoint over all stream heads, chained to the previous one "
        "(CHECKPOINT_SIGNING_KEY_FILE); prints SEQ:DIGEST for auditors to publish."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        total = EventTable(payouts).count_streams()
        try:
            with progress_bar(total, "stream") as bar:
                checkpoint = take_checkpoint(payouts, progress=bar.update)
        except (ImproperlyConfigured, RefusedToSign) as exc:
            raise CommandError(f"no checkpoint taken: {exc}", returncode=1) from None
        self.stdout.write(
            f"checkpoint #{checkpoint.sequence}: position {checkpoint.position}, "
            f"{checkpoint.streams} streams, {checkpoint.events} events\n"
            f"anchor {checkpoint.sequence}:{checkpoint.checkpoint_digest}"
        )
