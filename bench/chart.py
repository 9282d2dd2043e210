"""One PNG comparing the variants: publish, consume, codec ratios, and the goals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["draw"]


def _bars(ax: Any, title: str, figures: dict[str, dict[str, Any] | None]) -> None:
    names = [n for n, f in figures.items() if f]
    medians = [figures[n]["median"] for n in names]  # type: ignore[index]
    low = [m - figures[n]["min"] for n, m in zip(names, medians, strict=True)]  # type: ignore[index]
    high = [figures[n]["max"] - m for n, m in zip(names, medians, strict=True)]  # type: ignore[index]
    ax.bar(
        names, medians, yerr=[low, high], capsize=4, color=["#888", "#2a6", "#36c"][: len(names)]
    )
    ax.set_title(title)
    ax.set_ylabel("events/s (median, min-max)")
    ax.tick_params(axis="x", labelsize=8)


def draw(results: dict[str, Any], path: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    pub, con = results.get("publish", {}), results.get("consume", {})
    _bars(
        axes[0][0],
        "Publish",
        {
            "raw aiokafka": pub.get("raw_aiokafka"),
            "bus Publisher": pub.get("bus_publisher"),
            "confluent-kafka": pub.get("confluent_kafka"),
        },
    )
    _bars(
        axes[0][1],
        "Consume",
        {"raw aiokafka": con.get("raw_aiokafka"), "bus Subscriber": con.get("bus_subscriber")},
    )
    codec = results.get("codec") or {}
    ax = axes[1][0]
    names = list(codec)
    xs = range(len(names))
    ax.bar(
        [x - 0.2 for x in xs],
        [codec[n]["encode_ratio"]["median"] for n in names],
        0.4,
        label="encode",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [codec[n]["decode_ratio"]["median"] for n in names],
        0.4,
        label="decode",
    )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs), names, fontsize=7, rotation=15)
    ax.set_title("Codec: bus / plain fastavro (per second)")
    ax.legend()
    ax = axes[1][1]
    goals = [
        g for g in results.get("goals", []) if g["measured"] is not None and g["target"] is not None
    ]
    labels = [g["goal"] for g in goals]
    shares = [
        g["target"] / g["measured"] if g["at_most"] else g["measured"] / g["target"] for g in goals
    ]
    ax.barh(labels, shares, color=["#2a6" if s >= 1 else "#c33" for s in shares])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_title("Goals: measured / goal (>= 1 is met)")
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"spbe-bus benchmark {results['started']} ({results['mode']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
