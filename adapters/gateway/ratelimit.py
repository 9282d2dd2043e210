"""Request rate limits: one token bucket per key (a client id, or an address), in memory.

    limiter = RateLimiter(rate_per_s=5.0, burst=20)
    wait = limiter.take("dpmptsp-sicantik")
    if wait:   # refuse with 429 and Retry-After: retry_after_header(wait)

A bucket holds up to ``burst`` requests and refills at ``rate_per_s``; each allowed request
takes one. A bucket that has refilled to ``burst`` is the same as no bucket, so it is
dropped once it has been idle long enough to be full for certain: memory follows the keys
seen in the last ``burst / rate_per_s`` seconds, not every key ever seen. ``max_keys`` caps
it against a flood of new keys; past it the least recently used bucket goes (its key gets a
full burst again, the price of a bound).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bus.errors import ConfigError

__all__ = ["DEFAULT_MAX_KEYS", "RateLimiter", "retry_after_header"]

#: How many buckets a limiter keeps at most.
DEFAULT_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, ``rate_per_s`` sustained.

    ``clock`` returns seconds that only go forward (``time.monotonic``); tests pass their
    own. Not thread-safe: one event loop calls it.
    """

    __slots__ = ("_buckets", "_burst", "_clock", "_full_after_s", "_max_keys", "_rate")

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ConfigError(
                "rate_per_s must be a number of requests per second greater than 0",
                fix="give e.g. 5 (five requests a second)",
            )
        for name, value in (("burst", burst), ("max_keys", max_keys)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name} must be a whole number of at least 1", fix="give e.g. 20"
                )
        self._rate = float(rate_per_s)
        self._burst = burst
        self._clock = clock
        self._max_keys = max_keys
        #: After this long idle any bucket is full again, whatever it held.
        self._full_after_s = burst / self._rate
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0.0 if allowed, else the seconds until
        the next request of ``key`` would be allowed (nothing is taken then)."""
        now = self._clock()
        self._evict_idle(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self._burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self._burst), bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        self._buckets[key] = bucket  # now the most recently used
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def __len__(self) -> int:
        """How many buckets are kept now (the keys not known to be full)."""
        return len(self._buckets)

    def _evict_idle(self, now: float) -> None:
        # Buckets are in order of last use, so the idle ones are at the front.
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < self._full_after_s:
                return
            del self._buckets[key]


def retry_after_header(wait_s: float) -> str:
    """The ``Retry-After`` value for a wait from :meth:`RateLimiter.take`: whole seconds,
    rounded up, at least 1 (HTTP has no fractions here)."""
    return str(max(1, math.ceil(wait_s)))
