"""Operator tools: the catalogue and its provisioning, status, metrics.

Each tool lives in its own module; the CLI (``spbe-bus catalog``, ``spbe-bus status``)
is a thin layer over them. :mod:`bus.ops.metrics` needs ``prometheus-client`` and is
imported on its own.
"""

from __future__ import annotations

from bus.ops.catalog import Catalog, CatalogReport, load_catalog
from bus.ops.catalog_diff import Plan, ProvisioningError
from bus.ops.catalog_plan import apply_plan, plan_catalog

__all__ = [
    "Catalog",
    "CatalogReport",
    "Plan",
    "ProvisioningError",
    "apply_plan",
    "load_catalog",
    "plan_catalog",
]
