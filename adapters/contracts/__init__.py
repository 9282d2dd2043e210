"""The contract service: each active subscription's projected copy of the raw topics.

:class:`ContractService` consumes the raw topics, projects every event to the fields a
subscription may receive, re-keys it with the subscriber's pairwise key, records the
delivery in the ledger, then produces it to ``<raw topic>.for.<subscriber>``
(``docs/contracts.md``). :class:`ContractServiceAdapter` runs it from a
:class:`ContractServiceConfig` (``spbe-bus run`` of a ``kind: contract-service`` file).
"""

from __future__ import annotations

from adapters.contracts.app import ContractServiceAdapter
from adapters.contracts.config import DEFAULT_GROUP, ContractServiceConfig
from adapters.contracts.routes import Route, build_routes, filter_changed, projected_subject
from adapters.contracts.service import ContractService
from adapters.contracts.subjects import PROJECTED_MODE, register_projections

__all__ = [
    "DEFAULT_GROUP",
    "PROJECTED_MODE",
    "ContractService",
    "ContractServiceAdapter",
    "ContractServiceConfig",
    "Route",
    "build_routes",
    "filter_changed",
    "projected_subject",
    "register_projections",
]
