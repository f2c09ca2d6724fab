"""The operator's view of payouts: the projection, read-only; changes go through the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter, RangeNumericFilter
from unfold.decorators import action, display

from ledger.apps import get_payouts
from ledger.errors import LedgerError
from ledger.payout import Actor
from ledger.values import PayoutStatus
from projections.dashboard import overdue_payouts
from projections.models import PayoutAttempt, PayoutView

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from django.db.models import QuerySet
    from django.http import HttpRequest

_STATUS_COLOURS = {
    PayoutStatus.PENDING.value: "info",
    PayoutStatus.PROCESSING.value: "warning",
    PayoutStatus.COMPLETED.value: "success",
    PayoutStatus.FAILED.value: "danger",
    PayoutStatus.CANCELLED.value: "secondary",
}


class AttentionFilter(admin.SimpleListFilter):
    """The payouts that wait on something other than the normal flow."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("in_doubt", "Outcome unknown (in doubt)"),
            ("overdue", "Overdue (unfinished past the sweeper's wait)"),
            ("parked", "Parked"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "in_doubt":
            return queryset.filter(in_doubt=True, status=PayoutStatus.PROCESSING.value)
        if self.value() == "overdue":
            return queryset.filter(pk__in=overdue_payouts(timezone.now()).values("pk"))
        if self.value() == "parked":
            return queryset.filter(parked=True)
        return queryset


@admin.register(PayoutView)
class PayoutViewAdmin(ModelAdmin):
    list_display = [
        "id",
        "show_status",
        "amount",
        "currency",
        "recipient_type",
        "created_at",
        "updated_at",
        "version",
        "gateway_state",
    ]
    list_filter = [
        AttentionFilter,
        "status",
        "currency",
        "recipient_type",
        ("created_at", RangeDateTimeFilter),
        ("amount", RangeNumericFilter),
    ]
    list_filter_submit = True
    search_fields = ["=id", "description", "failure_code"]
    ordering = ["-created_at"]
    show_full_result_count = False
    list_per_page = 50
    actions = ["cancel_payouts", "resolve_in_doubt", "redrive"]
    readonly_fields = [
        "id",
        "status",
        "amount",
        "currency",
        "recipient_type",
        "masked_recipient",
        "description",
        "failure_code",
        "failure_message",
        "version",
        "created_at",
        "updated_at",
        "gateway_attempt",
        "event_history",
    ]
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PayoutView]:
        attempts = PayoutAttempt.objects.filter(payout_id=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                in_doubt=Exists(attempts.filter(in_doubt_since__isnull=False)),
                parked=Exists(attempts.filter(parked_at__isnull=False)),
            )
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_cancel_payouts_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_resolve_in_doubt_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    @display(description="Status", label=_STATUS_COLOURS)
    def show_status(self, obj: PayoutView) -> str:
        return obj.status

    @display(description="Gateway", label={"in doubt": "warning", "parked": "danger"})
    def gateway_state(self, obj: Any) -> str:
        if obj.parked:
            return "parked"
        # A final status is a definitive answer, whatever the flag still says.
        in_doubt = obj.in_doubt and obj.status == PayoutStatus.PROCESSING.value
        return "in doubt" if in_doubt else ""

    @admin.display(description="Gateway attempts")
    def gateway_attempt(self, obj: PayoutView) -> str:
        attempt = PayoutAttempt.objects.filter(payout_id=obj.id).first()
        if attempt is None:
            return "No gateway call yet."
        facts = [
            ("In doubt since", attempt.in_doubt_since),
            ("Why", attempt.in_doubt_reason),
            ("Parked at", attempt.parked_at),
            ("Failures not the provider's", attempt.failures or None),
            ("Last of them", attempt.last_failure),
            ("Leased to", attempt.lease_holder),
            ("Lease until", attempt.lease_until),
        ]
        shown = [(k, v) for k, v in facts if v]
        if not shown:
            return "Settled: nothing in doubt."
        return format_html_join(mark_safe("<br>"), "{}: {}", shown)

    @admin.display(description="Recipient (masked)")
    def masked_recipient(self, obj: PayoutView) -> str:
        return format_html_join(", ", "{}: {}", sorted(obj.recipient.items()))

    @admin.display(description="Event history (from the event store)")
    def event_history(self, obj: PayoutView) -> str:
        try:
            records = get_payouts().history(obj.id)
        except LedgerError as exc:
            return format_html("<em>{}</em>", exc)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}: {}</td><td><code>{}</code></td></tr>",
            (
                (
                    r.version,
                    r.type,
                    r.occurred_at.isoformat(),
                    r.actor["type"],
                    r.actor["id"],
                    r.data,
                )
                for r in records
            ),
        )
        return format_html(
            '<table class="w-full"><thead><tr><th>Version</th><th>Event</th><th>At</th>'
            "<th>Actor</th><th>Data</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @action(
        description="Cancel selected pending payouts", permissions=["cancel_payouts"]
    )
    def cancel_payouts(
        self, request: HttpRequest, queryset: QuerySet[PayoutView]
    ) -> None:
        payouts = get_payouts()

        def cancel(payout_id: UUID, actor: Actor) -> str:
            payouts.cancel(payout_id, reason="Cancelled by an operator.", actor=actor)
            return "cancelled; the list catches up in a moment"

        self._each(request, queryset, "Cancel", cancel)

    @action(
        description="Resolve in-doubt payouts by asking the gateway",
        permissions=["resolve_in_doubt"],
    )
    def resolve_in_doubt(
        self, request: HttpRequest, queryset: QuerySet[PayoutView]
    ) -> None:
        # Imported when used: the worker modules register their metrics on import,
        # and the admin is loaded by every command (migrate too), before the
        # supervisor has made the metrics directory.
        from workers import operator

        self._each(
            request,
            queryset,
            "Resolve",
            lambda payout_id, actor: operator.resolve(payout_id, actor=actor),
        )

    @action(description="Re-drive overdue payouts", permissions=["redrive"])
    def redrive(self, request: HttpRequest, queryset: QuerySet[PayoutView]) -> None:
        from workers import operator  # as in resolve_in_doubt

        self._each(
            request,
            queryset,
            "Re-drive",
            lambda payout_id, actor: operator.redrive(payout_id, actor=actor),
        )

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[PayoutView],
        verb: str,
        act: Callable[[UUID, Actor], str],
    ) -> None:
        """Run an operator action on each selected payout (at most a page: each
        may call the gateway), say what it did to each, and keep it in the admin's
        log; what it recorded in the ledger names the operator as its actor."""
        actor = Actor(
            "user", request.user.get_username(), getattr(request, "request_id", "")
        )
        for row in queryset[: self.list_per_page]:
            try:
                outcome = act(row.pk, actor)
                level = messages.SUCCESS
            except LedgerError as exc:
                outcome, level = str(exc), messages.WARNING
            self.message_user(request, f"{verb} {row.pk}: {outcome}", level)
            self.log_change(request, row, f"{verb}: {outcome}")
