"""One gateway attempt at a time per payout, and what is known of the last one.

The lease is a row in workers_payoutattempt taken by a conditional UPDATE: whoever
holds an unexpired lease may call the gateway for the payout; a redelivered task, a
sweeper's copy or a retry that finds it held ends without calling. A holder that died
leaves a lease that expires after LEASE_SECONDS, longer than any one gateway call."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from projections.models import MAX_DOUBT_REASON, MAX_LAST_FAILURE, PayoutAttempt

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime
    from uuid import UUID

    from django.db.models import Field

# Past this many failures that are not the provider's, a payout is parked: kept out
# of the sweeps and shown to operators instead of retried in a loop.
POISON_AFTER = 3


def lease_seconds() -> float:
    """Longer than one gateway call (connect + read timeouts) with room to record."""
    gateway = settings.PAYMENT_GATEWAY
    return (
        float(gateway.get("CONNECT_TIMEOUT", 2))
        + float(gateway.get("READ_TIMEOUT", 10))
        + 15
    )


class Lease:
    """A lease taken (or not) on a payout; `settle()` clears its doubt on release."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.settled = False

    def __bool__(self) -> bool:
        return self.held

    def settle(self) -> None:
        self.settled = True


def _db(field: str, value: UUID | datetime) -> UUID | datetime | str:
    # Raw SQL gets values as the model's field would store them (SQLite keeps a
    # uuid as 32 hex characters and datetimes as text). Each name is of a column of
    # the model, never of a relation.
    column = cast("Field[object, object]", PayoutAttempt._meta.get_field(field))
    return column.get_db_prep_value(value, connection, prepared=False)


def _take(payout_id: UUID, holder: str, now: datetime) -> bool:
    """One statement: create the row, or take its lease if free or expired."""
    table = connection.ops.quote_name(PayoutAttempt._meta.db_table)
    until = now + timedelta(seconds=lease_seconds())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (payout_id, lease_holder, lease_until, "
            "in_doubt_reason, failures, last_failure, updated_at) "
            "VALUES (%s, %s, %s, '', 0, '', %s) "
            "ON CONFLICT (payout_id) DO UPDATE SET lease_holder = "
            "excluded.lease_holder, lease_until = excluded.lease_until, "
            f"updated_at = excluded.updated_at WHERE {table}.lease_until IS NULL "
            f"OR {table}.lease_until < %s RETURNING payout_id",
            [
                _db("payout_id", payout_id),
                holder,
                _db("lease_until", until),
                _db("updated_at", now),
                _db("lease_until", now),
            ],
        )
        return cursor.fetchone() is not None


@contextlib.contextmanager
def lease(payout_id: UUID, holder: str) -> Iterator[Lease]:
    """Held (truthy) when this attempt may call the gateway for the payout; released
    after, in one update with the doubt cleared if the holder called `settle()`.
    `holder` names the attempt for operators; each lease is a token of its own."""
    holder = f"{holder[:150]} {uuid.uuid4().hex[:12]}"
    taken = Lease(_take(payout_id, holder, timezone.now()))
    try:
        yield taken
    finally:
        if taken:
            cleared = {"in_doubt_since": None, "in_doubt_reason": ""}
            PayoutAttempt.objects.filter(
                payout_id=payout_id, lease_holder=holder
            ).update(
                lease_holder="",
                lease_until=None,
                **(cleared if taken.settled else {}),
            )


def in_doubt(payout_id: UUID, reason: str) -> None:
    """The last call had no definitive answer: the payout may or may not be charged."""
    PayoutAttempt.objects.get_or_create(payout_id=payout_id)
    PayoutAttempt.objects.filter(payout_id=payout_id).update(
        # Since the first unanswered call, not the latest.
        in_doubt_since=Coalesce(F("in_doubt_since"), Value(timezone.now())),
        in_doubt_reason=reason[:MAX_DOUBT_REASON],
    )


def failed(payout_id: UUID, reason: str) -> bool:
    """A failure that is not the provider's; True when the payout is now parked."""
    PayoutAttempt.objects.get_or_create(payout_id=payout_id)
    rows = PayoutAttempt.objects.filter(payout_id=payout_id)
    rows.update(failures=F("failures") + 1, last_failure=reason[:MAX_LAST_FAILURE])
    rows.filter(failures__gte=POISON_AFTER, parked_at__isnull=True).update(
        parked_at=timezone.now()
    )
    return rows.filter(parked_at__isnull=False).exists()


def park(payout_id: UUID, reason: str) -> None:
    """Out of the sweeps at once, for an operator: retrying cannot help."""
    PayoutAttempt.objects.get_or_create(payout_id=payout_id)
    PayoutAttempt.objects.filter(payout_id=payout_id, parked_at__isnull=True).update(
        parked_at=timezone.now()
    )
    PayoutAttempt.objects.filter(payout_id=payout_id).update(
        failures=F("failures") + 1, last_failure=reason[:MAX_LAST_FAILURE]
    )


def unpark(payout_id: UUID) -> None:
    """Back into the sweeps, its failure count reset: an operator looked at it."""
    PayoutAttempt.objects.filter(payout_id=payout_id).update(parked_at=None, failures=0)


def unavailable(payout_ids: Iterable[UUID]) -> set[UUID]:
    """Of these payouts, the ones a sweep must leave alone: parked for an operator,
    or leased to an attempt that is still live."""
    return set(
        PayoutAttempt.objects.filter(payout_id__in=list(payout_ids))
        .filter(Q(parked_at__isnull=False) | Q(lease_until__gte=timezone.now()))
        .values_list("payout_id", flat=True)
    )
