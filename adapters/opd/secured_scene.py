"""The demo on a secured cluster: each adapter its own principal, granted by the catalogue.

Before the story, the operator does what ``spbe-bus catalog apply`` does for access:
one SCRAM user per principal of ``deploy/catalog.yaml`` (its password in a 0600 hand-over
file), exactly the ACLs the catalogue grants, and the reviewed standard in
``_spbe.schemas``. Each adapter file of ``deploy/adapters`` then connects with its own
hand-over file (``<PRINCIPAL>_KAFKA_CREDENTIALS``); the contract service runs as
``spbe-contracts``, the only principal besides the steward's and the operator's that may
read Disdukcapil's raw topic; the REST gateway runs as ``spbe-gateway``. The demo's
topics (projected and dead letter ones too) are made by the operator before: a
subscriber may write its own, not create topics.

After the story, Dinkes tries what the bus exists to prevent: publishing residents'
data as Disdukcapil's SIAK, and reading tax payments it has no agreement for. Both are
refused by the brokers, and each refusal is reported with its named error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import SecretBytes

from bus.connection import KafkaConnection, KafkaSecurity
from bus.contract.events import PendudukUpdated
from bus.contract.standard import example
from bus.delivery import Delivery, Outcome
from bus.errors import BusError, KafkaRefusedError
from bus.ops.access import apply_access, handover_file, register_reviewed_standard
from bus.ops.audit import AuditLog
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.publisher import Publisher, PublisherConfig
from bus.subscriber import Subscriber, SubscriberConfig

__all__ = [
    "ADAPTER_PRINCIPALS",
    "Refusal",
    "credentials_variable",
    "grant_demo_access",
    "try_what_dinkes_may_not",
]

#: Adapter file of deploy/adapters -> the principal it runs as.
ADAPTER_PRINCIPALS: Mapping[str, str] = {
    "disdukcapil-outbox-relay.yaml": "disdukcapil-siak",
    "dpmptsp-outbox-relay.yaml": "dpmptsp-sicantik",
    "dpmptsp-penduduk-sink.yaml": "dpmptsp-penduduk",
    "bapenda-izin-sink.yaml": "bapenda-izin",
    "bapenda-outbox-relay.yaml": "bapenda-sipd",
    "contracts.yaml": "spbe-contracts",
    "dinsos-penduduk-sink.yaml": "dinsos-penduduk",
    "gateway.yaml": "spbe-gateway",
}
DINKES = "dinkes-penduduk"
_ATTEMPT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Refusal:
    """One attempt the brokers had to refuse, and what the bus said about it."""

    who: str
    attempt: str
    refused: bool
    error: str
    message: str


def credentials_variable(principal: str) -> str:
    """The variable an adapter file reads its hand-over file from: ``DPMPTSP_PENDUDUK_...``."""
    return principal.upper().replace("-", "_") + "_KAFKA_CREDENTIALS"


async def grant_demo_access(operator: KafkaConnection, handover_dir: Path) -> dict[str, str]:
    """Users, ACLs and the standard from the catalogue; the adapters' credential variables."""
    catalog, _ = load_catalog(default_catalog_path())
    async with AuditLog(operator) as audit:
        await apply_access(
            operator,
            catalog,
            today=date.today(),
            handover_dir=handover_dir,
            audit=audit,
            reason="spbe-bus demo: access from deploy/catalog.yaml",
        )
    await register_reviewed_standard(operator)
    return {
        credentials_variable(p): str(handover_file(handover_dir, p))
        for p in ADAPTER_PRINCIPALS.values()
    }


def _as(principal: str, handover_dir: Path) -> KafkaSecurity:
    return KafkaSecurity(credentials_file=handover_file(handover_dir, principal))


async def _refused(who: str, attempt: str, act: Callable[[], Awaitable[object]]) -> Refusal:
    try:
        await asyncio.wait_for(act(), _ATTEMPT_TIMEOUT_S)
    except KafkaRefusedError as exc:
        return Refusal(who, attempt, True, type(exc).__name__, exc.message)
    except (BusError, TimeoutError) as exc:
        return Refusal(who, attempt, False, type(exc).__name__, str(exc).split("\n", 1)[0])
    return Refusal(who, attempt, False, "", "the brokers allowed it")


async def try_what_dinkes_may_not(
    operator: KafkaConnection, handover_dir: Path, *, key_secret: str
) -> list[Refusal]:
    """Dinkes, with its own credentials, publishes as SIAK and reads Bapenda's payments."""
    dinkes = _as(DINKES, handover_dir)
    servers = operator.bootstrap_servers

    async def publish_as_siak() -> None:
        config = PublisherConfig(
            bootstrap_servers=servers,
            security=dinkes,
            source="ID/PEMDA-3273/DISDUKCAPIL/siak",
            key_secret=SecretBytes(key_secret.encode()),
            register_schemas=False,
            start_timeout_s=60,
        )
        async with Publisher(config) as publisher:
            await publisher.publish(PendudukUpdated.from_json(example("PendudukUpdated")))

    async def read_tax_payments() -> None:
        async def ignore(delivery: Delivery) -> Outcome | None:
            return None

        pajak = "spbe.bapenda.pajak.v1"
        config = SubscriberConfig(
            bootstrap_servers=servers,
            security=dinkes,
            subscriber_id=DINKES,
            topics=(pajak,),
            start_timeout_s=60,
        )
        async with Subscriber(config, ignore) as subscriber:
            await subscriber.run()

    return [
        await _refused(DINKES, "publish PendudukUpdated as Disdukcapil's SIAK", publish_as_siak),
        await _refused(DINKES, "read spbe.bapenda.pajak.v1 (no agreement)", read_tax_payments),
    ]
