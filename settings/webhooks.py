"""WEBHOOK_*: how webhooks are retried, where they may go, and how long a send waits."""

from __future__ import annotations

from settings.env import PRODUCTION, env

# A delivery that keeps failing is retried for this long after its first attempt
# (exponential backoff with full jitter, from WEBHOOK_RETRY_BASE up to
# WEBHOOK_RETRY_MAX_DELAY between attempts); then it is given up on and its endpoint
# disabled. Seconds; the default is three days.
WEBHOOK_RETRY_WINDOW = env.float("WEBHOOK_RETRY_WINDOW", default=3 * 24 * 3600.0)
WEBHOOK_RETRY_BASE = env.float("WEBHOOK_RETRY_BASE", default=5.0)
WEBHOOK_RETRY_MAX_DELAY = env.float("WEBHOOK_RETRY_MAX_DELAY", default=3600.0)
# Connect fast; a receiver should answer 2xx quickly and do its work afterwards.
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=3.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=10.0)
# Requests in flight at once, in all and per endpoint: a slow or dead endpoint holds
# at most its own share, never every slot.
WEBHOOK_MAX_IN_FLIGHT = env.int("WEBHOOK_MAX_IN_FLIGHT", default=16)
WEBHOOK_ENDPOINT_MAX_IN_FLIGHT = env.int("WEBHOOK_ENDPOINT_MAX_IN_FLIGHT", default=4)
# Loopback, private, link-local and other non-global addresses are refused, at
# registration and at every send, unless this allows them (a receiver on the same
# host or network, and the tests).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# https only in production, unless a deployment says otherwise on purpose.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=not PRODUCTION)
# Rotating a signing secret: how long the previous one keeps signing, by default.
WEBHOOK_SECRET_OVERLAP = env.int("WEBHOOK_SECRET_OVERLAP", default=24 * 3600)
# The most endpoints there may be: every event is matched against each of them.
WEBHOOK_MAX_ENDPOINTS = env.int("WEBHOOK_MAX_ENDPOINTS", default=100)
