"""UNFOLD: the look and navigation of the operator admin."""

from __future__ import annotations

from django.urls import reverse_lazy

UNFOLD = {
    "SITE_TITLE": "Payout Ledger",
    "SITE_HEADER": "Payout Ledger",
    "SITE_SYMBOL": "payments",
    "SHOW_HISTORY": False,
    "DASHBOARD_CALLBACK": "projections.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": True,
        "navigation": [
            {
                "title": "Ledger",
                "items": [
                    {
                        "title": "Dashboard",
                        "icon": "dashboard",
                        "link": reverse_lazy("admin:index"),
                    },
                    {
                        "title": "Payouts",
                        "icon": "payments",
                        "link": reverse_lazy("admin:projections_payoutview_changelist"),
                    },
                    {
                        "title": "Webhook endpoints",
                        "icon": "webhook",
                        "link": reverse_lazy(
                            "admin:webhooks_webhookendpoint_changelist"
                        ),
                    },
                    {
                        "title": "API keys",
                        "icon": "key",
                        "link": reverse_lazy("admin:api_apikey_changelist"),
                    },
                    {
                        "title": "Users",
                        "icon": "person",
                        "link": reverse_lazy("admin:auth_user_changelist"),
                    },
                ],
            }
        ],
    },
}
