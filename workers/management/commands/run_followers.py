"""manage.py run_followers: the projector and the dispatcher, each on its own thread."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ledger.apps import get_payouts
from projections.follow import follow
from projections.projectors import PayoutViewProjection
from workers.dispatcher import PayoutDispatcher

FOLLOWERS = {"projector": PayoutViewProjection, "dispatcher": PayoutDispatcher}


class Command(BaseCommand):
    help = "Follow the event log: update the projection and enqueue payout tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only", choices=sorted(FOLLOWERS), help="run a single follower"
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [options["only"]] if options["only"] else list(FOLLOWERS)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        payouts = get_payouts()
        threads = [
            threading.Thread(
                target=follow,
                args=(payouts, FOLLOWERS[name](), stop),
                kwargs={"batch_size": options["batch_size"]},
                name=name,
                daemon=True,
            )
            for name in names
        ]
        for thread in threads:
            thread.start()
        self.stdout.write(f"following the event log: {', '.join(names)}")
        while not stop.wait(0.5):
            if not all(t.is_alive() for t in threads):
                stop.set()
        for thread in threads:
            thread.join(timeout=10)
