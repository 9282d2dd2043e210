"""Codec: ``bus.contract.codec`` encode/decode per schema next to plain fastavro (pure CPU).

The bus adds the single-object header and fingerprint resolution on reading; plain fastavro
``schemaless_writer``/``schemaless_reader`` on the same datum and schema is the baseline.
"bus encode" is what the publisher runs for a validated event (``avro_datum()``,
``validated=True``); "bus encode, checked" validates the datum first, as for a plain dict.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import fastavro

from bench.stats import Spread, spread
from bus.contract import codec
from bus.contract.events import EVENT_TYPES
from bus.contract.standard import example, load_standard

__all__ = ["measure"]


def _per_second(func: Callable[[], object], iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        func()
    return iterations / (time.perf_counter() - started)


def measure(iterations: int, rounds: int) -> dict[str, dict[str, Any]]:
    """Per schema: encode and decode per second, bus and fastavro, with the ratios."""
    standard = load_standard()
    resolver = codec.InMemorySchemas(standard.values())
    results: dict[str, dict[str, Any]] = {}
    for name, schema in sorted(standard.items()):
        event = EVENT_TYPES[name].from_json(example(name))
        datum = event.to_avro()
        model_datum = event.avro_datum()
        encoded = codec.encode(schema, datum)
        plain = encoded[codec.HEADER_LENGTH :]

        def fastavro_write(schema: Any = schema.parsed, datum: Any = datum) -> bytes:
            stream = io.BytesIO()
            fastavro.schemaless_writer(stream, schema, datum)
            return stream.getvalue()

        def fastavro_read(schema: Any = schema.parsed, data: bytes = plain) -> object:
            return fastavro.schemaless_reader(io.BytesIO(data), schema, None)

        variants: dict[str, Callable[[], object]] = {
            "bus_encode": partial(codec.encode, schema, model_datum, validated=True),
            "bus_encode_checked": partial(codec.encode, schema, datum),
            "fastavro_encode": fastavro_write,
            "bus_decode": partial(codec.decode, encoded, resolver, schema),
            "fastavro_decode": fastavro_read,
        }
        samples: dict[str, list[float]] = {key: [] for key in variants}
        for _ in range(rounds):
            for key, func in variants.items():
                samples[key].append(_per_second(func, iterations))
        figures: dict[str, Spread] = {key: spread(values) for key, values in samples.items()}
        results[name] = {
            "value_bytes": len(encoded),
            **{key: figure.as_dict() for key, figure in figures.items()},
            "encode_ratio": spread(
                [
                    b / f
                    for b, f in zip(samples["bus_encode"], samples["fastavro_encode"], strict=True)
                ]
            ).as_dict(),
            "decode_ratio": spread(
                [
                    b / f
                    for b, f in zip(samples["bus_decode"], samples["fastavro_decode"], strict=True)
                ]
            ).as_dict(),
        }
    return results
