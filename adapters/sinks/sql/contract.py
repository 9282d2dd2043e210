"""A SQL sink's mapping checked against its subscription's contract (pure).

A sink reading projected topics (``<raw topic>.for.<subscriber>``) receives only the fields
its subscription's ``allowed_fields`` names; a column mapped from any other field would
stay empty forever. :func:`contract_problems` finds every such mapping before the sink
starts, each naming its key (``events.PendudukUpdated.columns.no_kk``), the field, and
that the subscription's contract does not include it. The event classes come from
:func:`bus.ops.projections.contract_models`.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from pydantic_core import InitErrorDetails

from adapters.sinks.sql.config import SqlSinkConfig, mapping_error
from adapters.sinks.sql.fields import PathError, resolve
from bus.contract.projected_events import ProjectedEvent

__all__ = ["contract_problems"]

_FIX_WIDEN = (
    "remove it from the mapping, or have the subscription's allowed_fields in the catalogue "
    "(deploy/catalog.yaml) widened under its agreement"
)


def contract_problems(
    config: SqlSinkConfig,
    models: Mapping[str, type[BaseModel]],
    subscription: str,
    loc: tuple[str, ...] = (),
) -> list[InitErrorDetails]:
    """Every mapping of ``config`` outside the contract ``models`` describe.

    ``models`` maps event names to the classes the subscription receives (projected
    events); ``loc`` prefixes every error's location (``("sink",)`` in an adapter file).
    """
    errors: list[InitErrorDetails] = []
    for name, mapping in config.events.items():
        where = (*loc, "events", name)
        model = models.get(name)
        if model is None:
            received = ", ".join(sorted(models)) or "none"
            errors.append(
                _error(
                    where,
                    f"the contract of subscription {subscription} does not include event "
                    f"type {name} (it receives: {received})",
                    _FIX_WIDEN,
                    name,
                )
            )
            continue
        allowed = _allowed(model)
        paths = [((*where, "key"), "the key", mapping.key)]
        paths += [
            ((*where, "columns", column), f"column {column}", path)
            for column, path in mapping.columns.items()
        ]
        for at, what, path in paths:
            try:
                resolve(model, path)
            except PathError:
                errors.append(
                    _error(
                        at,
                        f"{what} is mapped from field '{path}', which the contract of "
                        f"subscription {subscription} does not include for {name} "
                        f"(it allows: {allowed})",
                        _FIX_WIDEN,
                        path,
                    )
                )
    return errors


def _allowed(model: type[BaseModel]) -> str:
    if isinstance(model, type) and issubclass(model, ProjectedEvent):
        return ", ".join(model.projection.allowed_fields)
    return ", ".join(model.model_fields)


def _error(loc: tuple[str, ...], problem: str, fix: str, value: object) -> InitErrorDetails:
    return mapping_error(loc, problem, fix, value, error_type="sql_sink_contract")
