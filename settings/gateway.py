"""PAYMENT_GATEWAY: the adapter class and how it reaches the provider."""

from __future__ import annotations

from settings.env import env

PAYMENT_GATEWAY = {
    "CLASS": env.str("GATEWAY_CLASS", default="workers.gateway.http.HttpGateway"),
    "URL": env.str("GATEWAY_URL", default="http://127.0.0.1:8001"),
    "API_KEY": env.str("GATEWAY_API_KEY", default=""),
    # Connect fast, read long enough for a slow provider, never forever.
    "CONNECT_TIMEOUT": env.float("GATEWAY_CONNECT_TIMEOUT", default=2.0),
    "READ_TIMEOUT": env.float("GATEWAY_READ_TIMEOUT", default=10.0),
}
