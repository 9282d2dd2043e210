"""Prometheus metrics of the gateway: requests per endpoint, client and status; latency.

``endpoint`` is the route template (``/api/v1/penduduk/{nik}``), never the path, so no NIK
becomes a label. A request without a valid token counts under the client ``-``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

__all__ = ["ANONYMOUS", "observe_request"]

ANONYMOUS: Final = "-"

REQUESTS = Counter(
    "spbe_gateway_requests_total",
    "API requests answered, by endpoint, client and HTTP status",
    ["endpoint", "client", "status"],
)
LATENCY = Histogram(
    "spbe_gateway_request_duration_seconds",
    "Time from a request's arrival to its answer, by endpoint",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PERSONS = Counter(
    "spbe_gateway_persons_returned_total",
    "Persons whose data the gateway returned, by client and subscription",
    ["client", "subscription"],
)


def observe_request(endpoint: str, client: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    REQUESTS.labels(endpoint, client, str(status)).inc()
    LATENCY.labels(endpoint).observe(seconds)
