"""The bundled fake provider's process (`python -m workers.gateway.fakeserver`) reads
this module alone, without Django. The service never imports it: a bad value of one
of the fake's own knobs stops the fake, never the service."""

from __future__ import annotations

from urllib.parse import urlsplit

from settings.env import env
from settings.gateway import PAYMENT_GATEWAY

# It listens where the service calls the provider.
_url = urlsplit(PAYMENT_GATEWAY["URL"])
HOST = _url.hostname or "127.0.0.1"
PORT = _url.port or 80
URL = _url.geturl()
# Empty counts as unset, as it always has for these three.
LATENCY_MS = float(env.str("GATEWAY_LATENCY_MS", default="") or 0)
FAULTS = env.str("GATEWAY_FAULTS", default="")
TIME_SCALE = float(env.str("GATEWAY_TIME_SCALE", default="") or 1)
