from __future__ import annotations

from rest_framework.throttling import UserRateThrottle


class PerUserThrottle(UserRateThrottle):
    """API_THROTTLE_RATE per user (keys count as their user); 429 with Retry-After."""

    scope = "user"
