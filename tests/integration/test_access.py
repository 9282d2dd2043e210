"""The catalogue as access control on the secured broker: users, ACLs, hand-over files that
work, expiry and rotation, and the audit trail of each change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from pydantic import SecretBytes

from bus.cli.main import main
from bus.connection import KafkaConnection, KafkaSecurity, read_credentials_file
from bus.contract.events import PendudukUpdated
from bus.contract.projected_names import projected_topic
from bus.contract.standard import example
from bus.errors import BusError
from bus.ops.access import apply_access, plan_access, register_reviewed_standard, rotate_password
from bus.ops.audit import AuditLog, read_audit
from bus.ops.catalog import Catalog
from bus.ops.catalog_plan import apply_plan, plan_catalog
from bus.publisher import Publisher, PublisherConfig
from tests.support.secured import read_refusal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PENDUDUK = "id.go.spbe.dukcapil.PendudukUpdated.v1"
IZIN = "id.go.spbe.dpmptsp.IzinDiterbitkan.v1"
TODAY = date(2026, 6, 1)


def catalogue(tag: str, *, dinkes_expires: date = date(2027, 12, 31)) -> Catalog:
    """Disdukcapil and DPMPTSP with one application each; Dinkes subscribes to penduduk
    (restricted: it reads its projection, ``<topic>.for.dinkes-<tag>``)."""

    def topic(domain: str, aggregate: str, steward: str, event: str) -> dict[str, Any]:
        return {
            "name": f"spbe.{domain}{tag}.{aggregate}.v1",
            "steward": steward,
            "event_types": [event],
            "partitions": 1,
            "replication_factor": 1,
            "retention_ms": -1,
            "cleanup_policy": "delete",
            "classification": "restricted",
        }

    return Catalog.model_validate(
        {
            "stewards": [
                {
                    "id": "DISDUKCAPIL",
                    "name": "Disdukcapil",
                    "pemda": "3273",
                    "applications": [f"siak{tag}"],
                },
                {
                    "id": "DPMPTSP",
                    "name": "DPMPTSP",
                    "pemda": "3273",
                    "applications": [f"sicantik{tag}"],
                },
            ],
            "topics": [
                topic("dukcapil", "penduduk", "DISDUKCAPIL", PENDUDUK),
                topic("dpmptsp", "izin", "DPMPTSP", IZIN),
            ],
            "subscriptions": [
                {
                    "subscriber": f"dinkes-{tag}",
                    "opd": "DINKES",
                    "topics": [f"spbe.dukcapil{tag}.penduduk.v1"],
                    "purpose": "Pemadanan data sasaran imunisasi.",
                    "legal_basis": "PKS 470/0933/DISDUKCAPIL/2025",
                    "allowed_fields": {PENDUDUK: ["nik"]},
                    "expires": dinkes_expires.isoformat(),
                }
            ],
        }
    )


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def of(path: Path) -> KafkaConnection:
    """The connection a hand-over file describes, as an adapter would read it."""
    return KafkaConnection(
        bootstrap_servers=read_credentials_file(path)["bootstrap"],
        security=KafkaSecurity(credentials_file=path),
    )


async def provision(operator: KafkaConnection, catalog: Catalog, handover: Path, **kw: Any) -> Any:
    """What ``catalog apply`` does: topics, the standard, then users and ACLs."""
    plan = await plan_catalog(operator, catalog)
    if not plan.in_sync:
        await apply_plan(operator, catalog, plan)
    await register_reviewed_standard(operator)
    async with AuditLog(operator) as audit:
        return await apply_access(
            operator,
            catalog,
            today=kw.pop("today", TODAY),
            handover_dir=handover,
            audit=audit,
            **kw,
        )


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90
) -> None:
    """Wait until ``check`` holds (ACLs and credentials reach the brokers in a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"still not so after {timeout_s} s: {what}")
        await asyncio.sleep(1)


async def can_produce(connection: KafkaConnection, topic: str) -> bool:
    producer = AIOKafkaProducer(
        **connection.aiokafka_options(), enable_idempotence=True, request_timeout_ms=10_000
    )
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"probe")
        return True
    except (TopicAuthorizationFailedError, KafkaConnectionError):
        return False
    except KafkaError as exc:
        if "Authorization" in type(exc).__name__:
            return False
        raise
    finally:
        await producer.stop()


async def can_read(connection: KafkaConnection, topic: str, group: str) -> bool:
    refused = await read_refusal(connection, topic, group)
    if refused is None:
        return True
    if isinstance(refused, KafkaConnectionError) or "Authorization" in type(refused).__name__:
        return False
    raise refused


async def test_apply_creates_users_and_acls_and_a_second_apply_changes_nothing(
    secured_kafka: KafkaConnection, tag: str, tmp_path: Path
) -> None:
    catalog = catalogue(tag)
    siak, dinkes = f"disdukcapil-siak{tag}", f"dinkes-{tag}"
    result = await provision(secured_kafka, catalog, tmp_path)
    assert {siak, f"dpmptsp-sicantik{tag}", dinkes} <= set(result.applied.users)
    assert result.after.in_sync
    for name in (siak, dinkes):
        path = tmp_path / f"{name}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert of(path).security.username == name

    again = await plan_access(secured_kafka, catalog, today=TODAY)
    assert again.in_sync, again.render()
    second = await provision(secured_kafka, catalog, tmp_path / "second")
    assert second.applied.in_sync
    assert not (tmp_path / "second").exists()  # no password written twice

    records = await read_audit(secured_kafka)
    mine = [r for r in records if r.subscriber in (siak, dinkes)]
    actions = {(r.subscriber, r.action) for r in mine}
    assert {
        (siak, "access.user_created"),
        (siak, "access.grant"),
        (dinkes, "access.grant"),
    } <= actions
    password = read_credentials_file(tmp_path / f"{siak}.json")["password"]
    assert all(password not in r.to_bytes().decode() for r in records)


async def test_hand_over_credentials_allow_what_the_catalogue_grants_and_nothing_else(
    secured_kafka: KafkaConnection, tag: str, tmp_path: Path
) -> None:
    catalog = catalogue(tag)
    penduduk, izin = f"spbe.dukcapil{tag}.penduduk.v1", f"spbe.dpmptsp{tag}.izin.v1"
    await provision(secured_kafka, catalog, tmp_path)
    siak = of(tmp_path / f"disdukcapil-siak{tag}.json")
    dinkes = of(tmp_path / f"dinkes-{tag}.json")

    mine = projected_topic(penduduk, f"dinkes-{tag}")
    await eventually(lambda: can_produce(siak, penduduk), "the steward produces to its topic")
    assert not await can_produce(siak, izin), "Disdukcapil wrote DPMPTSP's topic"
    assert not await can_produce(dinkes, penduduk), "Dinkes wrote a Disdukcapil topic"
    assert not await can_produce(dinkes, mine), "Dinkes wrote its own projection"
    await eventually(lambda: can_read(dinkes, mine, f"dinkes-{tag}"), "Dinkes reads its projection")
    assert not await can_read(dinkes, penduduk, f"dinkes-{tag}"), "read of a restricted raw topic"
    assert not await can_read(dinkes, izin, f"dinkes-{tag}"), "read of an unsubscribed topic"
    assert not await can_read(dinkes, mine, f"other-{tag}"), "a foreign consumer group"


async def test_an_expired_subscription_loses_access_on_the_next_apply(
    secured_kafka: KafkaConnection, tag: str, tmp_path: Path
) -> None:
    mine = projected_topic(f"spbe.dukcapil{tag}.penduduk.v1", f"dinkes-{tag}")
    await provision(secured_kafka, catalogue(tag, dinkes_expires=TODAY), tmp_path)
    dinkes = of(tmp_path / f"dinkes-{tag}.json")
    await eventually(lambda: can_read(dinkes, mine, f"dinkes-{tag}"), "Dinkes reads its projection")

    later = TODAY + timedelta(days=1)
    result = await provision(
        secured_kafka, catalogue(tag, dinkes_expires=TODAY), tmp_path / "later", today=later
    )
    revoked = {a.user for a in result.applied.revocations}
    assert revoked == {f"dinkes-{tag}", "spbe-contracts"}  # the service no longer writes it
    assert {a.resource_name for a in result.applied.revocations if a.user == "spbe-contracts"} >= {
        mine
    }

    async def refused() -> bool:
        return not await can_read(dinkes, mine, f"dinkes-{tag}")

    await eventually(refused, "the expired subscriber is refused")
    records = await read_audit(secured_kafka, subscriber=f"dinkes-{tag}")
    assert any(r.action == "access.revoke" for r in records)


async def test_rotation_refuses_the_old_password_and_accepts_the_new(
    secured_kafka: KafkaConnection, tag: str, tmp_path: Path
) -> None:
    penduduk = f"spbe.dukcapil{tag}.penduduk.v1"
    principal = f"disdukcapil-siak{tag}"
    await provision(secured_kafka, catalogue(tag), tmp_path)
    old = of(tmp_path / f"{principal}.json")
    await eventually(lambda: can_produce(old, penduduk), "the first password works")

    async with AuditLog(secured_kafka) as audit:
        path = await rotate_password(
            secured_kafka, principal, handover_dir=tmp_path, audit=audit, reason="yearly"
        )
    new = of(path)
    assert new.security.password != old.security.password

    async def old_refused() -> bool:
        return not await can_produce(old, penduduk)

    await eventually(old_refused, "the old password is refused")
    await eventually(lambda: can_produce(new, penduduk), "the new password works")
    records = await read_audit(secured_kafka, subscriber=principal)
    rotated = [r for r in records if r.action == "access.password_rotated"]
    assert rotated
    assert rotated[-1].reason == "yearly"


async def schemas_end(operator: KafkaConnection) -> int:
    consumer = AIOKafkaConsumer(**operator.aiokafka_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition("_spbe.schemas", 0)
        end: int = (await consumer.end_offsets([tp]))[tp]
        return end
    finally:
        await consumer.stop()


async def test_a_steward_publishes_with_its_hand_over_file_and_writes_no_schema(
    secured_kafka: KafkaConnection, tag: str, tmp_path: Path
) -> None:
    """After apply registered the standard, a publisher that may only read _spbe.schemas
    starts (its schemas are registered) and publishes to its topic."""
    penduduk = f"spbe.dukcapil{tag}.penduduk.v1"
    await provision(secured_kafka, catalogue(tag), tmp_path)
    path = tmp_path / f"disdukcapil-siak{tag}.json"
    before = await schemas_end(secured_kafka)
    config = PublisherConfig(
        bootstrap_servers=of(path).bootstrap_servers,
        security=KafkaSecurity(credentials_file=path),
        source=f"ID/PEMDA-3273/DISDUKCAPIL/siak{tag}",
        key_secret=SecretBytes(b"a steward secret for the test"),
        topic_overrides={"PendudukUpdated": penduduk, "KematianDicatat": penduduk},
    )

    async def published() -> bool:
        try:
            async with Publisher(config) as publisher:
                await publisher.publish(PendudukUpdated.from_json(example("PendudukUpdated")))
        except BusError:
            return False  # ACLs still on their way to the broker
        return True

    await eventually(published, "the steward's publisher starts and publishes")
    assert await schemas_end(secured_kafka) == before


def test_the_commands_plan_apply_and_rotate(
    secured_kafka: KafkaConnection,
    tag: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``catalog plan`` lists users and grants per principal and warns of an expiry within
    30 days; ``apply`` makes them and writes hand-over files; ``rotate`` names the new one."""
    assert secured_kafka.security.credentials_file is not None
    monkeypatch.setenv("SPBE_KAFKA_CREDENTIALS", str(secured_kafka.security.credentials_file))
    catalog = catalogue(tag, dinkes_expires=TODAY + timedelta(days=10))
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog.model_dump(mode="json", exclude_defaults=True)))
    common = ["--catalog", str(path), "--bootstrap", secured_kafka.bootstrap_servers]
    handover = ["--handover-dir", str(tmp_path / "handover"), "--as-of", TODAY.isoformat()]

    assert main(["catalog", "plan", *common, *handover]) == 0
    out = capsys.readouterr().out
    assert f"access of disdukcapil-siak{tag} (application siak{tag} of DISDUKCAPIL):" in out
    assert f"+ grant ALLOW WRITE on topic spbe.dukcapil{tag}.penduduk.v1" in out
    assert f"subscriptions[0] (dinkes-{tag}): expires on" in out
    assert not (tmp_path / "handover").exists()

    assert main(["catalog", "apply", *common, *handover, "--reason", "test"]) == 0
    out = capsys.readouterr().out
    assert "access applied:" in out
    assert (tmp_path / "handover" / f"dinkes-{tag}.json").exists()

    assert main(["catalog", "apply", *common, *handover]) == 0
    assert "access: nothing to do" in capsys.readouterr().out

    rotate = ["catalog", "credentials", "rotate", f"dinkes-{tag}"]
    assert main([*rotate, "--bootstrap", secured_kafka.bootstrap_servers, *handover[:2]]) == 0
    out = capsys.readouterr().out
    assert f"rotated the password of dinkes-{tag}" in out
    assert (
        read_credentials_file(tmp_path / "handover" / f"dinkes-{tag}.json")["password"] not in out
    )
