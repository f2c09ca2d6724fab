"""Celery tasks: thin, take ids, declare how they fail, safe to run twice."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any
from uuid import UUID

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from ledger.apps import get_payouts
from ledger.errors import TamperedEvent
from ledger.payout import Actor
from ledger.values import PayoutStatus
from projections.audit import take_checkpoint
from projections.checkpoints import RefusedToSign
from projections.selectors import stuck_payout_pages
from workers import attempts, failpoints, processing
from workers.celery import app
from workers.gateway import get_gateway
from workers.gateway.base import (
    GatewayError,
    TransientGatewayError,
)
from workers.metrics import GATEWAY_ERRORS, TAMPERED_PAYOUTS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

logger = logging.getLogger(__name__)
# Payouts re-enqueued per sweep at most; the rest wait for the next sweep.
SWEEP_BATCH = 1000
failpoints.configure(settings.FAILPOINTS)


def worker_actor(task: Task) -> Actor:
    return Actor(
        type="worker",
        id=f"{task.request.hostname or 'worker'}:{os.getpid()}",
        request_id=task.request.id or "",
    )


class PayoutTask(Task):
    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        payout_id = UUID(args[0])
        if isinstance(exc, TamperedEvent):
            # Its stored events are not the ledger's: never paid, never retried.
            TAMPERED_PAYOUTS.inc()
            attempts.park(payout_id, f"tampered: {exc}")
            logger.critical("payout refused and parked, its events forged: %s", exc)
            return
        if not isinstance(exc, GatewayError):
            # Not the provider's doing (a bug, data that cannot be read): counted,
            # and after a few the payout is parked for an operator, never retried
            # in a loop and never in the way of the others.
            if attempts.failed(payout_id, f"{type(exc).__name__}: {exc}"):
                logger.error("payout parked after repeated failures: %r", exc)
            return
        # Retries are exhausted (or the gateway refused the request itself): settle
        # the payout from the gateway's own record instead of leaving it in limbo.
        GATEWAY_ERRORS.labels(kind="exhausted").inc()
        actor = worker_actor(self)
        with attempts.lease(payout_id, actor.id) as held:
            if not held:
                return  # another attempt is calling the gateway: it settles it
            try:
                status = processing.give_up(
                    get_payouts(), get_gateway(), payout_id, actor=actor
                )
            except GatewayError as error:
                # Neither the lookup nor the void got a definitive answer: the payout
                # stays processing, in doubt, for the sweeper. Raised from here,
                # Celery would report an internal error and run this handler (and
                # the lookup) a second time.
                attempts.in_doubt(payout_id, f"give-up: {type(error).__name__}")
                logger.warning(
                    "no definitive answer after the last retry (%s); left to sweep",
                    type(error).__name__,
                )
                return
            if PayoutStatus(status).is_terminal:
                held.settle()


@app.task(
    base=PayoutTask,
    bind=True,
    autoretry_for=(TransientGatewayError,),
    retry_backoff=True,
    retry_backoff_max=settings.PAYOUT_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.PAYOUT_MAX_RETRIES,
    acks_late=True,
)
def process_payout(self: Task, payout_id: str) -> str:
    ident, actor = UUID(payout_id), worker_actor(self)
    with attempts.lease(ident, actor.id) as held:
        if not held:
            # Another attempt (a redelivery, a sweep's copy) is calling the gateway
            # for it right now; that one, its retries or a later sweep settle it.
            logger.info("payout leased to another attempt; this copy ends")
            return PayoutStatus.PROCESSING.value
        try:
            status = processing.process(
                get_payouts(), get_gateway(), ident, actor=actor
            )
        except TransientGatewayError as error:
            GATEWAY_ERRORS.labels(kind="transient").inc()
            attempts.in_doubt(ident, type(error).__name__)
            raise
        if PayoutStatus(status).is_terminal:
            held.settle()
    return status


def _sweepable(older_than: datetime) -> Iterator[UUID]:
    """Every overdue payout, oldest first, page by page (the ones swept a moment ago
    must not hide those behind them), but those parked for an operator and those
    leased to an attempt that is live."""
    for page in stuck_payout_pages(updated_before=older_than, page=SWEEP_BATCH):
        skip = attempts.unavailable(page)
        yield from (payout_id for payout_id in page if payout_id not in skip)


@app.task
def sweep_stuck_payouts() -> int:
    """Re-enqueue payouts left pending or processing past the deadline.

    Late acks still lose messages in some crash orders (RELIABILITY.md §1), so the
    recovery time is owned by this sweep, not by the broker's visibility timeout.
    """
    older_than = timezone.now() - timedelta(seconds=settings.STUCK_PAYOUT_AFTER)
    overdue = (
        payout_id
        for payout_id in _sweepable(older_than)
        # At most once per STUCK_PAYOUT_AFTER per payout: behind a backlog, a payout
        # copied at every sweep floods the queue with copies that delay everything
        # (make chaos: ~500 copies every 5 s, 230 payouts still in flight after 60 s).
        if cache.add(f"swept:{payout_id}", 1, timeout=settings.STUCK_PAYOUT_AFTER)
    )
    ids = list(islice(overdue, SWEEP_BATCH))
    for payout_id in ids:
        # A copy still queued when the next one may be sent is dropped unrun (the
        # worker discards an expired message): at most two copies wait per payout.
        process_payout.apply_async(
            args=[str(payout_id)], expires=2 * settings.STUCK_PAYOUT_AFTER
        )
    if ids:
        logger.warning("re-enqueued %d stuck payouts", len(ids))
    return len(ids)


@app.task(
    # Acked on receipt: a checkpointer killed mid-walk leaves nothing to redeliver,
    # the next beat tick signs afresh.
    acks_late=False,
    # The walk reads every stream; it may take longer than a payout's time limit.
    soft_time_limit=settings.CHECKPOINT_INTERVAL,
    time_limit=settings.CHECKPOINT_INTERVAL + 60,
)
def checkpoint_ledger() -> int | None:
    """Sign the next checkpoint of the chain. Routed to the checkpoints queue, which
    only the checkpointer consumes: no other process can load the signing key."""
    try:
        checkpoint = take_checkpoint(get_payouts())
    except RefusedToSign as refused:
        logger.critical("checkpoint refused: %s", refused)
        return None
    logger.info(
        "checkpoint #%d at position %d: anchor %d:%s",
        checkpoint.sequence,
        checkpoint.position,
        checkpoint.sequence,
        checkpoint.checkpoint_digest,
    )
    return checkpoint.sequence
