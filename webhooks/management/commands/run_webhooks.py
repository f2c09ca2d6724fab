"""manage.py run_webhooks: the webhook follower and the sender, each on its thread.

A process of its own (deploy/processes.py): a receiver that is slow, or a restart of
this process, touches neither the projection nor the payouts' processing."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ledger.apps import get_payouts
from projections.follow import follow
from webhooks.follower import WebhookFollower
from webhooks.sender import Sender


class Command(BaseCommand):
    help = "Follow the event log into webhook deliveries, and send them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        payouts = get_payouts()
        # The follower wakes the sender as soon as it has committed new deliveries.
        wake = threading.Event()
        threads = [
            threading.Thread(
                target=follow,
                args=(payouts, WebhookFollower(payouts, wake), stop),
                kwargs={"batch_size": options["batch_size"]},
                name="webhook-follower",
                daemon=True,
            ),
            threading.Thread(
                target=Sender(wake=wake).run,
                args=(stop,),
                name="webhook-sender",
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        self.stdout.write("following the event log: webhooks", ending="\n")
        self.stdout.flush()
        while not stop.wait(0.5):
            if not all(t.is_alive() for t in threads):
                stop.set()
        wake.set()
        for thread in threads:
            thread.join(timeout=12)
