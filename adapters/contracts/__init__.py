"""The contract service: each active subscription's projected copy of the raw topics.

:class:`ContractService` consumes the raw topics, projects every event to the fields a
subscription may receive, re-keys it with the subscriber's pairwise key, records the
delivery in the ledger, then produces it to ``<raw topic>.for.<subscriber>``
(``docs/contracts.md``).
"""

from __future__ import annotations

from adapters.contracts.routes import Route, build_routes, filter_changed, projected_subject
from adapters.contracts.service import DEFAULT_GROUP, ContractService

__all__ = [
    "DEFAULT_GROUP",
    "ContractService",
    "Route",
    "build_routes",
    "filter_changed",
    "projected_subject",
]
