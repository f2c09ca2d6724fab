"""API_THROTTLE_RATE per user, counted in fixed windows: one Redis round trip a request.

DRF's own throttle reads and rewrites the whole request history (two round trips and
a pickled list); a counter that starts its window at the first request and expires
with it says the same thing for a rate limit: no more than N requests in any window.
"""

from __future__ import annotations

import logging
import math
import time
from functools import cache as once
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import UserRateThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


@once
def shared_redis() -> redis.Redis | None:
    """The Redis behind the default cache, or None when the cache is in-process."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    options: dict[str, float] = config.get("OPTIONS", {})
    return redis.Redis.from_url(
        config["LOCATION"],
        socket_connect_timeout=options.get("socket_connect_timeout"),
        socket_timeout=options.get("socket_timeout"),
    )


def count_hit(key: str, window: int) -> tuple[int, float]:
    """This request's number in its window, and the seconds until the window ends."""
    client = shared_redis()
    if client is None:
        return _count_hit_in_process(key, window)
    # The cache's own key, so that cache.delete(key) resets the count too.
    name = cache.make_and_validate_key(key)
    pipe = client.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window, nx=True)
    pipe.pttl(name)
    count, _, ttl_ms = pipe.execute()
    return count, (ttl_ms / 1000 if ttl_ms > 0 else float(window))


def _count_hit_in_process(key: str, window: int) -> tuple[int, float]:
    # Embedded mode: one process's LocMem cache, so a read-modify-write is enough.
    now = time.monotonic()
    count, ends = cache.get(key) or (0, now + window)
    if ends <= now:
        count, ends = 0, now + window
    cache.set(key, (count + 1, ends), timeout=math.ceil(ends - now))
    return count + 1, ends - now


class PerUserThrottle(UserRateThrottle):
    """API_THROTTLE_RATE per user (keys count as their user); 429 with Retry-After."""

    scope = "user"
    # Set by SimpleRateThrottle.__init__ from the rate (None without one); the stubs
    # do not declare them.
    num_requests: int | None
    duration: int | None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        # parse_rate gives both for any rate.
        assert self.num_requests is not None and self.duration is not None
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            count, self._remaining = count_hit(key, int(self.duration))
        except Exception:
            # Fail open: a rate limit is a usage policy, and creating a payout must
            # not depend on Redis being reachable (the event store is the record).
            logger.warning("throttle cache unavailable; request allowed", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self._remaining, 1.0)
