from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rest_framework.throttling import UserRateThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class PerUserThrottle(UserRateThrottle):
    """API_THROTTLE_RATE per user (keys count as their user); 429 with Retry-After."""

    scope = "user"

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            # Fail open: a rate limit is a usage policy, and creating a payout must
            # not depend on Redis being reachable (the event store is the record).
            logger.warning("throttle cache unavailable; request allowed", exc_info=True)
            return True
