"""The REST gateway: the SPBE API table (JSON over HTTPS) for OPD applications without Kafka.

Ingress publishes the events an application posts on behalf of its steward; egress answers
from read models the gateway keeps as a subscriber of each client's projected topics.
Clients authenticate with OAuth 2.0 client credentials for short-lived JWT bearer tokens
(docs/api.md).
"""

from adapters.gateway.config import GatewayClient, GatewayConfig, RateLimit
from adapters.gateway.errors import GatewayError, TokenRejected
from adapters.gateway.service import Gateway

__all__ = [
    "Gateway",
    "GatewayClient",
    "GatewayConfig",
    "GatewayError",
    "RateLimit",
    "TokenRejected",
]
