"""GET payouts/?as_of=: the list as it was at an instant, replayed from the event store.

Candidates come from the projection: payouts created at or before `as_of`, filtered in
SQL on what never changes (amount, currency, created_at) and walked in the requested
order with the usual keyset cursor. Each candidate is then replayed from its event
stream at `as_of` (one stream read each) and `status` is judged on that replayed state.
A request replays at most AS_OF_SCAN_LIMIT candidates: when it stops there, the page
may be short, or even empty, and `next` (or `previous`) continues from the last
candidate it looked at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import django_filters
from django.conf import settings
from django.utils.dateparse import parse_datetime
from django_filters.utils import translate_validation
from rest_framework.exceptions import ValidationError

from api.filters import PayoutFilter
from api.pagination import KeysetPagination
from api.serializers import STATUSES, PayoutOutput
from ledger.apps import get_payouts
from ledger.errors import PayoutNotFound
from projections.selectors import payout_list

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from ledger.records import PayoutSnapshot

AS_OF_HELP = "RFC 3339 instant with a time zone; events at or before it."


def parse_as_of(raw: str | None) -> datetime | None:
    """`as_of` as an aware UTC datetime, None when absent; a 400 when malformed."""
    if raw is None:
        return None
    try:
        # A "+" left unencoded in a query string arrives as a space.
        value = parse_datetime(raw.replace(" ", "+"))
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise ValidationError(
        {"as_of": ["Must be an RFC 3339 date-time with a time zone."]}
    )


class AsOfPayoutFilter(PayoutFilter):
    """The list's filters; `status` is checked here but applied after the replay."""

    status = django_filters.MultipleChoiceFilter(
        choices=[(s, s) for s in STATUSES], method="after_replay"
    )

    def after_replay(self, queryset: Any, name: str, value: Any) -> Any:
        return queryset


class AsOfPagination(KeysetPagination):
    """Keyset pagination over candidates, each replayed before it counts as a row."""

    def __init__(
        self,
        *,
        replay: Callable[[UUID], PayoutSnapshot],
        statuses: frozenset[str],
        scan_limit: int,
    ) -> None:
        self.replay, self.statuses = replay, statuses
        self.scan_limit = max(1, scan_limit)  # 0 would never get anywhere

    # A QuerySet only, as KeysetPagination's (DRF's method may take a sequence too).
    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.read_parameters(request)
        if self.field == "updated_at":
            raise ValidationError(
                {
                    "ordering": [
                        "updated_at cannot be combined with as_of: the replayed "
                        "updated_at is not indexed. Use created_at or amount."
                    ]
                }
            )
        forward = self.forward
        descending = self.descending if forward else not self.descending
        # (candidate, replayed): links are built from the projection's values, the
        # ones the keyset walks on.
        matches: list[tuple[Any, PayoutSnapshot]] = []
        first = last = None  # the candidates nearest to and furthest from the cursor
        scanned, more, budget_spent = 0, False, False
        for candidate in self._candidates(self.walk(queryset, descending), descending):
            if scanned == self.scan_limit:
                budget_spent = True
                break
            scanned += 1
            first, last = first or candidate, candidate
            try:
                payout = self.replay(candidate.id)
            except PayoutNotFound:  # in the projection, not (yet) in the store
                continue
            if self.statuses and payout.status not in self.statuses:
                continue
            matches.append((candidate, payout))
            if len(matches) > self.limit:
                more = True
                break
        page = matches[: self.limit]
        if not forward:
            page.reverse()
        rows = [candidate for candidate, _ in page]
        self.rows = [payout for _, payout in page]
        # Where the walk stopped (the far end) and where it began (the near end):
        # `next` and `previous` resume from there, skipping nothing that matched.
        far = (rows[-1] if forward else rows[0]) if more else None
        far = far or (last if budget_spent else None)
        near = (rows[0] if forward else rows[-1]) if rows else first
        if self.cursor is None:
            near = None
        self.next_anchor, self.previous_anchor = (far, near) if forward else (near, far)
        return self.rows

    def _candidates(self, queryset: QuerySet[Any], descending: bool) -> Iterator[Any]:
        """Candidates in order, read in growing chunks, one past the scan budget."""
        fetched, size, previous = 0, self.limit + 1, None
        while fetched <= self.scan_limit:
            chunk = queryset
            if previous is not None:
                value = getattr(previous, self.field)
                chunk = self.beyond(queryset, descending, value, previous.id)
            take = min(size, self.scan_limit + 1 - fetched)
            rows = list(chunk.only("id", self.field)[:take])
            yield from rows
            fetched += len(rows)
            if len(rows) < take:
                return
            previous, size = rows[-1], min(size * 2, 500)

    def get_next_link(self) -> str | None:
        return self._link(self.next_anchor, True) if self.next_anchor else None

    def get_previous_link(self) -> str | None:
        if not self.previous_anchor:
            return None
        return self._link(self.previous_anchor, False)


def payouts_as_of(request: Request, as_of: datetime) -> Response:
    """One page of the list as it was at `as_of`, in the list's usual shape."""
    filterset = AsOfPayoutFilter(
        request.query_params, queryset=payout_list(), request=request
    )
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    payouts = get_payouts()
    paginator = AsOfPagination(
        replay=lambda payout_id: payouts.get_payout(payout_id, as_of=as_of),
        statuses=frozenset(filterset.form.cleaned_data.get("status") or ()),
        scan_limit=settings.AS_OF_SCAN_LIMIT,
    )
    rows = paginator.paginate_queryset(
        filterset.qs.filter(created_at__lte=as_of), request
    )
    return paginator.get_paginated_response(PayoutOutput(rows, many=True).data)
