"""What a worker does with one payout. Plain functions: no Celery, adapters passed in."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ledger.logcontext import bound
from ledger.values import PayoutStatus
from workers import failpoints

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


def give_up(
    payouts: Payouts, gateway: PaymentGateway, payout_id: UUID, *, actor: Actor
) -> str:
    """After the last retry: settle from what the gateway says, never by guessing.

    A timeout may hide a charge the provider did make, so the payout fails only when
    the provider confirms it holds no charge for this payout. If even that question
    cannot be answered, the payout stays in processing for the sweeper to retry.
    """
    with bound(payout_id=payout_id):
        known = gateway.status(payout_id)
        if known is not None:
            return record(payouts, payout_id, known, actor=actor)
        payouts.fail(
            payout_id,
            code=GATEWAY_UNAVAILABLE,
            message="The payment gateway was unavailable after every retry.",
            actor=actor,
        )
        logger.warning("payout failed: gateway unavailable after retries")
        return PayoutStatus.FAILED.value


def record(
    payouts: Payouts, payout_id: UUID, result: SubmitResult, *, actor: Actor
) -> str:
    if result.accepted:
        payouts.complete(payout_id, gateway_reference=result.reference, actor=actor)
        logger.info("payout completed", extra={"gateway_reference": result.reference})
        return PayoutStatus.COMPLETED.value
    payouts.fail(
        payout_id, code=result.decline_code, message=result.decline_message, actor=actor
    )
    logger.info("payout failed", extra={"failure_code": result.decline_code})
    return PayoutStatus.FAILED.value
