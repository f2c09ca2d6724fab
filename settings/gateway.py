"""PAYMENT_GATEWAY: the adapter class and how it reaches the provider."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from settings.env import PRODUCTION, env

PAYMENT_GATEWAY = {
    "CLASS": env.str("GATEWAY_CLASS", default="workers.gateway.http.HttpGateway"),
    "URL": env.str("GATEWAY_URL", default="http://127.0.0.1:8001"),
    "API_KEY": env.str("GATEWAY_API_KEY", default=""),
    # Connect fast, read long enough for a slow provider, never forever.
    "CONNECT_TIMEOUT": env.float("GATEWAY_CONNECT_TIMEOUT", default=2.0),
    "READ_TIMEOUT": env.float("GATEWAY_READ_TIMEOUT", default=10.0),
    # HTTP(S)_PROXY and the like are ignored unless named here: a card number must
    # not take a route that the environment of one process happens to set.
    "PROXY": env.str("GATEWAY_PROXY", default="") or None,
}
# Card numbers travel to the provider: over TLS in production, unless a deployment
# says otherwise on purpose (the bundled fake, on loopback).
if (
    PRODUCTION
    and urlsplit(PAYMENT_GATEWAY["URL"]).scheme != "https"
    and not env.bool("GATEWAY_ALLOW_HTTP", default=False)
):
    raise ImproperlyConfigured(
        "GATEWAY_URL must be https:// when APP_ENV=production "
        "(GATEWAY_ALLOW_HTTP=true allows http, e.g. for the bundled fake gateway)"
    )
