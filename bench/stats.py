"""Figures from repeated rounds: median, min and max; percentiles; ratios (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Spread", "percentile", "rate", "spread"]


@dataclass(frozen=True, slots=True)
class Spread:
    """One figure measured over several rounds."""

    median: float
    min: float
    max: float
    rounds: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values: Sequence[float]) -> Spread:
    """The median, min and max of ``values`` (at least one)."""
    if not values:
        raise ValueError("no values to summarise")
    return Spread(
        median=statistics.median(values),
        min=min(values),
        max=max(values),
        rounds=[round(v, 4) for v in values],
    )


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing was timed."""
    return count / seconds if seconds > 0 else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * pct / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
