"""What a worker does with one payout. Plain functions: no Celery, adapters passed in."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ledger.cipher import is_bound
from ledger.errors import TamperedEvent
from ledger.logcontext import bound
from ledger.values import PayoutStatus
from projections.database import EventTable
from workers import failpoints
from workers.gateway.base import PaymentInFlight
from workers.metrics import PROCESSING_SECONDS

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts
    from ledger.payout import Actor
    from workers.gateway.base import PaymentGateway, SubmitResult

logger = logging.getLogger(__name__)

GATEWAY_UNAVAILABLE = "gateway_unavailable"


def process(
    payouts: Payouts, gateway: PaymentGateway, payout_id: UUID, *, actor: Actor
) -> str:
    """Drive one payout to a final status; safe to run twice, or concurrently.

    TransientGatewayError propagates: the caller retries, and the gateway's
    idempotency key (the payout id) makes every retry the same single charge.
    """
    with bound(payout_id=payout_id):
        refuse_copies(payouts, payout_id)
        order = payouts.start_processing(payout_id, actor=actor)
        if order.status != PayoutStatus.PROCESSING:
            logger.info("payout already %s; nothing to do", order.status)
            return order.status
        failpoints.hit("after_processing_started")
        if order.resumed:
            # An earlier attempt may have been charged and then lost (crash, timeout):
            # ask the gateway before paying again, rather than trusting the key alone,
            # which a provider may have pruned by now.
            known = gateway.status(payout_id)
            if known is not None:
                logger.info("payout settled from the gateway's record")
                return record(payouts, payout_id, known, actor=actor)
        result = gateway.pay(order)
        failpoints.hit("after_gateway_call")
        return record(payouts, payout_id, result, actor=actor)


def refuse_copies(payouts: Payouts, payout_id: UUID) -> None:
    """Raise TamperedEvent when the payout's Created is a copy of another's.

    A Created of the bound format fails to decrypt anywhere but in its own row, and
    the aggregate checks its chain seed, so loading the payout refuses those copies.
    A legacy-format Created (written before binding) carries neither: it is paid
    only if no other row holds its very bytes (random nonces never repeat).
    """
    if not getattr(payouts.mapper, "bound", False):
        return  # no cipher: the in-memory store of unit tests
    created = payouts.recorder.select_events(payout_id, lte=1, limit=1)
    if not created or is_bound(created[0].state):
        return
    if EventTable(payouts).copies_of(created[0].state) > 1:
        raise TamperedEvent(
            payout_id,
            1,
            created[0].topic,
            "its legacy-format Created is a byte-for-byte copy of another row's",
        )


def give_up(
    payouts: Payouts, gateway: PaymentGateway, payout_id: UUID, *, actor: Actor
) -> str:
    """After the last retry: settle from a definitive answer, never by guessing.

    A timeout may hide a charge the provider made, or will still make (a request it
    holds), so "no charge yet" settles nothing: the payout fails only once the
    provider has voided its idempotency key, promising never to charge it. A charge
    that is pending, or a question that gets no answer, leaves the payout in
    processing for a later lookup (the sweeper).
    """
    with bound(payout_id=payout_id):
        try:
            known = gateway.status(payout_id)
        except PaymentInFlight:
            logger.info("charge still pending at the gateway; left to the sweeper")
            return PayoutStatus.PROCESSING.value
        if known is None:
            known = gateway.void(payout_id)
        if known is not None:
            return record(payouts, payout_id, known, actor=actor)
        payouts.fail(
            payout_id,
            code=GATEWAY_UNAVAILABLE,
            message="The payment gateway was unavailable after every retry; the "
            "charge was voided and will never be made.",
            actor=actor,
        )
        logger.warning("payout failed: gateway unavailable, its charge voided")
        return PayoutStatus.FAILED.value


def record(
    payouts: Payouts, payout_id: UUID, result: SubmitResult, *, actor: Actor
) -> str:
    if result.accepted:
        final = payouts.complete(
            payout_id, gateway_reference=result.reference, actor=actor
        )
        logger.info("payout completed", extra={"gateway_reference": result.reference})
    else:
        final = payouts.fail(
            payout_id,
            code=result.decline_code,
            message=result.decline_message,
            actor=actor,
        )
        logger.info("payout failed", extra={"failure_code": result.decline_code})
    PROCESSING_SECONDS.observe((final.updated_at - final.created_at).total_seconds())
    return final.status
