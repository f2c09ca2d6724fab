"""What an operator may do to a payout besides cancelling it, through the ledger and
the same lease the workers take: settle one in doubt from the gateway's record, and
re-drive one that is overdue. Each returns a sentence saying what it did; whatever
it records in the ledger carries the operator as its actor."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ledger.apps import get_payouts
from ledger.logcontext import bound
from ledger.values import PayoutStatus
from workers import attempts, processing
from workers.gateway import get_gateway
from workers.gateway.base import PaymentInFlight, TransientGatewayError

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.payout import Actor

logger = logging.getLogger(__name__)


def resolve(payout_id: UUID, *, actor: Actor) -> str:
    """Ask the gateway what became of a payout in processing, and record its
    definitive answer. No answer, or "no charge", records nothing: only the
    provider's voided key may turn a payout into a failure (processing.give_up)."""
    payouts = get_payouts()
    with bound(payout_id=payout_id), attempts.lease(payout_id, actor.id) as held:
        if not held:
            return "a worker is calling the gateway for it right now: nothing done"
        status = payouts.get_payout(payout_id).status
        if status != PayoutStatus.PROCESSING.value:
            return f"it is {status}: nothing to resolve"
        try:
            known = get_gateway().status(payout_id)
        except PaymentInFlight:
            return "the gateway says its charge is still pending: nothing recorded"
        except TransientGatewayError as exc:
            return (
                f"the gateway did not answer ({type(exc).__name__}): nothing recorded"
            )
        if known is None:
            return "the gateway holds no charge for it: re-drive it to pay it"
        final = processing.record(payouts, payout_id, known, actor=actor)
        held.settle()
        logger.info("operator %s settled the payout: %s", actor.id, final)
        return f"{final}, from the gateway's record"


def redrive(payout_id: UUID, *, actor: Actor) -> str:
    """Put an unfinished payout back in the workers' queue, parked or not. A pending
    one is moved to processing first, by the operator: the worker then asks the
    gateway before it pays, as for any resumed payout."""
    # Imported here: the task module binds Celery, which the admin needs only now.
    from workers.tasks import process_payout

    payouts = get_payouts()
    with bound(payout_id=payout_id):
        status = payouts.get_payout(payout_id).status
        if PayoutStatus(status).is_terminal:
            return f"it is {status}: nothing to re-drive"
        if status == PayoutStatus.PENDING.value:
            payouts.start_processing(payout_id, actor=actor)
        attempts.unpark(payout_id)
        process_payout.apply_async(args=[str(payout_id)])
        logger.info("operator %s re-drove the payout (was %s)", actor.id, status)
        return (
            "processing started and sent to the workers"
            if status == PayoutStatus.PENDING.value
            else "sent to the workers again (they ask the gateway before paying)"
        )
