"""Fixtures of the fault tests: a payout's task delivered to a worker in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from workers import tasks

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from celery.result import EagerResult

    from tests.support import Deliver


@pytest.fixture
def deliver(use_gateway: Callable[[Any], None]) -> Deliver:
    """Run a payout's task as a worker runs one delivery of it, calling `gateway`.

    `apply()` needs no broker, and an autoretry runs the next attempt at once: a
    whole retry schedule takes milliseconds.
    """

    def run(payout_id: UUID, gateway: Any) -> EagerResult:
        use_gateway(gateway)
        return tasks.process_payout.apply(args=[str(payout_id)])

    return run
