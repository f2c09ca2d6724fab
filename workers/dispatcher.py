"""The outbox relay: one process_payout task per Payout.Created in the event log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.utils import get_topic

from ledger.payout import Payout
from workers.tasks import process_payout

if TYPE_CHECKING:
    from projections.runner import Batch


class PayoutDispatcher:
    """Publishes inside the follower's transaction, before its position commits.

    A crash after publishing and before the commit publishes again (harmless: the
    task is idempotent); a broker that is down raises, the batch rolls back, and the
    position stays until it is back. Never the other way round, which would lose
    payouts.
    """

    name = "payout_dispatcher"
    topics = (get_topic(Payout.Created),)

    def handle(self, batch: Batch) -> None:
        for event, _position in batch:
            process_payout.apply_async(
                args=[str(event.originator_id)],
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                },
            )
