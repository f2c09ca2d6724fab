"""Webhook endpoints and deliveries in the admin: disabled endpoints stand out, every
attempt shows under its delivery, and deliveries can be re-sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from webhooks import services
from webhooks.models import (
    MAX_URL,
    WEBHOOK_EVENT_TYPES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.targets import UnsafeTarget, check_registration

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpRequest


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=MAX_URL, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES],
        initial=WEBHOOK_EVENT_TYPES,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "event_types", "description"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            check_registration(url)
        except UnsafeTarget as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModelAdmin):
    form = WebhookEndpointForm
    list_display = [
        "url",
        "state",
        "event_types",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "disabled_reason",
    ]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "enabled",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "previous_secret_expires_at",
        "created_at",
    ]
    actions = ["enable", "disable", "rotate_secret"]

    @display(description="state", label={"enabled": "success", "disabled": "danger"})
    def state(self, endpoint: WebhookEndpoint) -> str:
        return "enabled" if endpoint.enabled else "disabled"

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        endpoint, secret = services.endpoint_create(
            url=obj.url, event_types=obj.event_types, description=obj.description
        )
        obj.pk, obj.secret, obj.created_at = (
            endpoint.pk,
            endpoint.secret,
            endpoint.created_at,
        )
        obj._state.adding = False
        self.message_user(
            request,
            f"Signing secret of {endpoint.url} (shown only this once): {secret}",
            messages.WARNING,
        )

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], on: bool
    ) -> None:
        for endpoint in queryset:
            services.endpoint_set_enabled(endpoint, on)
        verb = "Enabled" if on else "Disabled"
        self.message_user(request, f"{verb} {queryset.count()} endpoint(s).")

    @action(description="Enable (resume deliveries in order)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._set_enabled(request, queryset, True)

    @action(description="Disable (deliveries wait)")
    def disable(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> None:
        self._set_enabled(request, queryset, False)

    @action(description="Rotate the signing secret")
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> None:
        overlap = settings.WEBHOOK_SECRET_OVERLAP
        for endpoint in queryset:
            endpoint, secret = services.endpoint_rotate_secret(
                endpoint, overlap_seconds=overlap
            )
            self.message_user(
                request,
                f"New signing secret of {endpoint.url} (shown only this once; the "
                f"previous one signs too for {overlap} s): {secret}",
                messages.WARNING,
            )


class WebhookAttemptInline(TabularInline):
    model = WebhookAttempt
    fields = [
        "at",
        "succeeded",
        "status_code",
        "latency_ms",
        "error",
        "response_prefix",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    list_display = [
        "id",
        "endpoint",
        "event_type",
        "payout_id",
        "version",
        "status",
        "attempts",
        "next_attempt_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["id", "payout_id"]
    readonly_fields = [
        "id",
        "endpoint",
        "payout_id",
        "version",
        "position",
        "event_type",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "first_attempt_at",
        "last_attempt_at",
        "succeeded_at",
        "created_at",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable (the change page lists the attempts), never edited by hand.
        return obj is None and super().has_change_permission(request, obj)

    @action(description="Resend selected deliveries")
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery in queryset:
            services.delivery_resend(delivery)
        self.message_user(
            request,
            f"{queryset.count()} delivery(ies) will be sent again, in order per "
            "payout.",
            messages.SUCCESS,
        )
