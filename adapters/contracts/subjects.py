"""The registry subjects of the projected schemas, and why they are not compatibility-checked.

Every projected schema is registered under ``<event type>.for.<subscriber>``
(:func:`~adapters.contracts.routes.projected_subject`) with compatibility ``NONE``, set by
the contract service before its first registration there. A contract changes both ways:
widened (a PKS amendment adds ``no_kk``, which has no default, so the new projection is
not ``BACKWARD`` compatible) and narrowed (a field withdrawn, not ``FORWARD`` compatible).
Both must take effect at the service's next start, and no check on the projected subject
can tell a lawful change of contract from a mistake; the catalogue's review does.

Nothing is lost by not checking, because no reader resolves a projected record against
another version of its projection: a subscriber decodes each record with the schema it
was written with, found by fingerprint (``bus.contract.message.read_record``), into the
event class of exactly that projection. What must evolve compatibly is the standard, and
its own subject (the event type) stays ``BACKWARD``: each projected version is derived
from a checked standard, so its fields keep their names, types and meaning. The subject's
history still records every version, when and by whom it was registered.
"""

from __future__ import annotations

from collections.abc import Iterable

from adapters.contracts.routes import projected_subject
from bus.contract.compatibility import CompatibilityMode
from bus.contract.projection import ProjectedSchema
from bus.logs import get_logger
from bus.registry import SchemaRegistry

__all__ = ["PROJECTED_MODE", "register_projections"]

log = get_logger(__name__)
#: The compatibility mode of every projected subject (the module docstring says why).
PROJECTED_MODE = CompatibilityMode.NONE


async def register_projections(
    registry: SchemaRegistry, projections: Iterable[ProjectedSchema]
) -> None:
    """Register each projection under its subject, first setting the subject's mode.

    A schema already registered there writes nothing; a mode already ``NONE`` neither.
    """
    for projected in projections:
        subject = projected_subject(projected)
        if registry.mode_of(subject) is not PROJECTED_MODE:
            await registry.set_mode(subject, PROJECTED_MODE)
        registered = await registry.register(projected.schema, subject=subject)
        log.debug("contract.projection_registered", subject=subject, version=registered.version)
