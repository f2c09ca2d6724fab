"""get_gateway(): the adapter named in settings.PAYMENT_GATEWAY, one per process."""

from __future__ import annotations

import functools
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from workers.gateway.base import PaymentGateway


class _GatewayClass(Protocol):
    """What settings.PAYMENT_GATEWAY["CLASS"] names: an adapter class, made from the
    whole PAYMENT_GATEWAY setting."""

    def from_settings(self, config: dict[str, Any]) -> PaymentGateway: ...


@functools.cache
def get_gateway() -> PaymentGateway:
    config = settings.PAYMENT_GATEWAY
    gateway_class: _GatewayClass = import_string(config["CLASS"])
    return gateway_class.from_settings(config)
