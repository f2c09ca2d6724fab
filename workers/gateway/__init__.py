"""get_gateway(): the adapter named in settings.PAYMENT_GATEWAY, one per process."""

from __future__ import annotations

import functools

from django.conf import settings
from django.utils.module_loading import import_string

from workers.gateway.base import PaymentGateway


@functools.cache
def get_gateway() -> PaymentGateway:
    config = settings.PAYMENT_GATEWAY
    gateway_class = import_string(config["CLASS"])
    return gateway_class.from_settings(config)  # type: ignore[no-any-return]
