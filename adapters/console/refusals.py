"""Which refused logins (429) the console writes to the audit trail, and their counter.

A flood of attempts from one address would otherwise write one ``_spbe.audit`` record per
refusal and push the real records out of the page's newest-N table. So each bucket (a
client address, an operator name) gets one ``rate-limited`` record per refill period (the
time the bucket takes to regain one attempt): the first refusal of the period is recorded,
with how many of the bucket's refusals since its previous record were not; the others are
only counted. Every refusal is counted in ``spbe_console_logins_refused_total`` (label
``limit``: ``address`` or ``operator``), served at the console's ``/metrics``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import Counter

__all__ = ["LOGINS_REFUSED", "RefusalLog"]

LOGINS_REFUSED: Final = Counter(
    "spbe_console_logins_refused_total",
    "Console logins refused by the rate limit (429), by the limit that refused them",
    ["limit"],
)
#: How many buckets' refusals are remembered; past it the oldest go (their next refusal is
#: recorded again: a bound on memory, never a lost count, which the counter keeps).
_MAX_KEYS: Final = 10_000


@dataclass(slots=True)
class _Seen:
    recorded_at: float
    unrecorded: int


class RefusalLog:
    """Decides, per bucket, which refusal is recorded; counts every one."""

    __slots__ = ("_clock", "_period_s", "_seen")

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._period_s = period_s
        self._clock = clock
        self._seen: OrderedDict[str, _Seen] = OrderedDict()  # oldest record first

    def refused(self, limit: Literal["address", "operator"], key: str) -> int | None:
        """Count one refusal of bucket ``key``: None when it is not to be recorded, else how
        many refusals of that bucket since its previous record were not recorded."""
        LOGINS_REFUSED.labels(limit).inc()
        now = self._clock()
        bucket = f"{limit}:{key}"
        seen = self._seen.get(bucket)
        if seen is not None and now - seen.recorded_at < self._period_s:
            seen.unrecorded += 1
            return None
        unrecorded = seen.unrecorded if seen is not None else 0
        self._seen.pop(bucket, None)
        self._seen[bucket] = _Seen(recorded_at=now, unrecorded=0)
        while len(self._seen) > _MAX_KEYS:
            self._seen.popitem(last=False)
        return unrecorded
