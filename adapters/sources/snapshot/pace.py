"""Throttling a snapshot to ``--max-rate`` rows per second: pure arithmetic, no clock of its own.

A batch of ``n`` rows goes out once its share of the budget, ``n / rate`` seconds, has
passed since the previous batch's share ended (the first batch waits for its own). So
the rows sent by any moment ``t`` never exceed ``rate * (t - t0)``. A run that stalled
(a slow database, a broker failing over) keeps at most one batch's share as credit, so it
does not catch up in a burst. Batches are cut to at most one second's worth of rows, so
even the credit is small.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Pace", "paced_batch_size"]


def paced_batch_size(batch_size: int, rate_per_s: float | None) -> int:
    """``batch_size``, cut to one second's worth of rows (at least 1) under a rate limit."""
    if rate_per_s is None:
        return batch_size
    return max(1, min(batch_size, int(rate_per_s)))


@dataclass(slots=True)
class Pace:
    """When each batch may go out, under at most ``rate_per_s`` rows/s (``None``: at once)."""

    rate_per_s: float | None
    #: When the shares of the batches so far end; ``None`` before the first batch.
    next_free: float | None = None

    def delay(self, now: float, rows: int) -> float:
        """Seconds to wait from ``now`` before sending a batch of ``rows`` rows."""
        if self.rate_per_s is None:
            return 0.0
        share = rows / self.rate_per_s
        start = now if self.next_free is None else max(self.next_free, now - share)
        self.next_free = start + share
        return max(0.0, self.next_free - now)
