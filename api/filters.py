"""PayoutFilter: the list endpoint's filters (django-filter)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import QueryDict

from api.serializers import STATUSES
from projections.models import PayoutView


class PayoutFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=[(s, s) for s in STATUSES],
        help_text="One or several: `?status=a&status=b` or `?status=a,b`.",
    )
    currency = django_filters.CharFilter(
        method="filter_currency", help_text="ISO 4217 code."
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="RFC 3339; inclusive."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="RFC 3339; inclusive."
    )
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte")
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte")

    class Meta:
        model = PayoutView
        fields: list[str] = []

    def __init__(
        self, data: QueryDict | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if data is not None and "status" in data:
            data = data.copy()
            data.setlist(
                "status",
                [
                    s.strip()
                    for v in data.getlist("status")
                    for s in v.split(",")
                    if s.strip()
                ],
            )
        super().__init__(data, *args, **kwargs)

    def filter_currency(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(currency=value.strip().upper())
