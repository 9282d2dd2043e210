"""``spbe-bus catalog plan / apply`` against a real broker (aiokafka admin on Kafka 4.x)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bus.cli.main import main
from tests.support.kafka import produce

pytestmark = pytest.mark.integration

IZIN = "id.go.spbe.dpmptsp.IzinDiterbitkan.v1"


def catalogue(domain: str, **topic: Any) -> dict[str, Any]:
    """One DPMPTSP permit topic in its own domain, one subscriber of it."""
    name = f"spbe.{domain}.izin.v1"
    return {
        "stewards": [{"id": "DPMPTSP", "name": "DPMPTSP Kota Bandung", "pemda": "3273"}],
        "topics": [
            {
                "name": name,
                "steward": "DPMPTSP",
                "event_types": [IZIN],
                "partitions": 2,
                "replication_factor": 1,
                "retention_ms": 604800000,
                "cleanup_policy": "delete",
                "classification": "restricted",
                **topic,
            }
        ],
        "subscriptions": [
            {
                "subscriber": f"bapenda-{domain}",
                "opd": "BAPENDA",
                "topics": [name],
                "purpose": "Pendataan potensi wajib pajak daerah.",
                "legal_basis": "PKS 027/PKS.31/DPMPTSP/2025",
                "allowed_fields": {IZIN: ["nomor_izin", "nib"]},
                "expires": "2030-12-31",
            }
        ],
    }


@pytest.fixture
def domain() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def write(tmp_path: Path, data: dict[str, Any], name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def _topic_state(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    entries = response.to_object()["resources"][0]["config_entries"]
    return len(described["partitions"]), {e["config_names"]: e["config_value"] for e in entries}


def topic_state(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    return asyncio.run(_topic_state(bootstrap, name))


def topics_exist(bootstrap: str, *names: str) -> bool:
    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return set(names) <= set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(check())


def test_plan_lists_the_changes_and_changes_nothing(
    kafka_bootstrap: str, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, catalogue(domain))
    code, out = run(
        capsys, "catalog", "plan", "--catalog", str(path), "--bootstrap", kafka_bootstrap
    )
    assert code == 0
    projected = f"spbe.{domain}.izin.v1.for.bapenda-{domain}"
    assert f"+ create event topic spbe.{domain}.izin.v1: 2 partitions" in out
    assert f"+ create projected topic {projected}: 2 partitions" in out
    assert f"+ create dead letter topic {projected}.dlq.bapenda-{domain}" in out
    assert f"+ create dead letter topic spbe.{domain}.izin.v1.dlq.spbe-contracts" in out
    assert f"spbe.{domain}.izin.v1.dlq.bapenda-{domain}" not in out, "no raw reader, no raw dlq"
    assert not topics_exist(kafka_bootstrap, f"spbe.{domain}.izin.v1")


def test_apply_twice_creates_the_topics_once_and_the_second_apply_is_a_no_op(
    kafka_bootstrap: str, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, catalogue(domain))
    args = ("--catalog", str(path), "--bootstrap", kafka_bootstrap)
    code, out = run(capsys, "catalog", "apply", *args)
    assert code == 0, out
    assert "applied 4 change(s); the cluster matches the catalogue" in out
    topic = f"spbe.{domain}.izin.v1"
    projected = f"{topic}.for.bapenda-{domain}"
    for name in (topic, projected):  # a projection is laid out as its raw topic
        partitions, configs = topic_state(kafka_bootstrap, name)
        assert partitions == 2
        assert configs["retention.ms"] == "604800000"
        assert configs["cleanup.policy"] == "delete"
    for dead in (f"{projected}.dlq.bapenda-{domain}", f"{topic}.dlq.spbe-contracts"):
        dlq_partitions, dlq_configs = topic_state(kafka_bootstrap, dead)
        assert dlq_partitions == 1
        assert dlq_configs["retention.ms"] == "-1"

    code, out = run(capsys, "catalog", "apply", *args)
    assert code == 0
    assert "nothing to do: the cluster matches the catalogue" in out
    assert "applied" not in out


def test_apply_adds_partitions_and_changes_configs_keeping_other_overrides(
    kafka_bootstrap: str, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, catalogue(domain), "first.yaml")
    assert (
        run(capsys, "catalog", "apply", "--catalog", str(first), "--bootstrap", kafka_bootstrap)[0]
        == 0
    )
    topic = f"spbe.{domain}.izin.v1"

    async def set_segment_ms() -> None:  # an override the catalogue does not manage
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC,
                        topic,
                        configs={"retention.ms": "604800000", "segment.ms": "3600000"},
                    )
                ]
            )
        finally:
            await admin.close()

    asyncio.run(set_segment_ms())
    grown = write(tmp_path, catalogue(domain, partitions=5, retention_ms=86400000), "grown.yaml")
    args = ("--catalog", str(grown), "--bootstrap", kafka_bootstrap)
    code, out = run(capsys, "catalog", "plan", *args)
    assert code == 0
    assert f"~ add partitions to {topic}: 2 -> 5" in out
    assert f"~ change configs of {topic}: retention.ms: 604800000 -> 86400000" in out
    assert "deletes records older than 1 day" in out

    code, out = run(capsys, "catalog", "apply", *args)
    assert code == 0, out
    partitions, configs = topic_state(kafka_bootstrap, topic)
    assert partitions == 5
    assert configs["retention.ms"] == "86400000"
    assert configs["segment.ms"] == "3600000", "an unmanaged override survives the change"
    assert "nothing to do" in run(capsys, "catalog", "plan", *args)[1]


def test_fewer_partitions_are_refused_and_nothing_is_applied(
    kafka_bootstrap: str, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, catalogue(domain, partitions=3), "first.yaml")
    assert (
        run(capsys, "catalog", "apply", "--catalog", str(first), "--bootstrap", kafka_bootstrap)[0]
        == 0
    )
    shrunk = catalogue(domain, partitions=1, retention_ms=86400000)
    path = write(tmp_path, shrunk, "shrunk.yaml")
    code, out = run(
        capsys, "catalog", "apply", "--catalog", str(path), "--bootstrap", kafka_bootstrap
    )
    assert code == 1
    assert "cannot remove partitions" in out
    assert "fix: set partitions: 3 (or more)" in out
    assert "nothing applied" in out
    partitions, configs = topic_state(kafka_bootstrap, f"spbe.{domain}.izin.v1")
    assert (partitions, configs["retention.ms"]) == (3, "604800000"), "the retention change waits"


def test_another_cleanup_policy_is_refused_on_a_topic_with_data(
    kafka_bootstrap: str, tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, catalogue(domain), "first.yaml")
    assert (
        run(capsys, "catalog", "apply", "--catalog", str(first), "--bootstrap", kafka_bootstrap)[0]
        == 0
    )
    topic = f"spbe.{domain}.izin.v1"
    asyncio.run(produce(kafka_bootstrap, topic, [b"an event"], key=b"503/0001"))
    compact = write(tmp_path, catalogue(domain, cleanup_policy="compact"), "compact.yaml")
    code, out = run(
        capsys, "catalog", "plan", "--catalog", str(compact), "--bootstrap", kafka_bootstrap
    )
    assert code == 1
    assert f"! refused for {topic}: cleanup.policy compact differs from delete" in out
    assert "holds 1 records" in out
    assert topic_state(kafka_bootstrap, topic)[1]["cleanup.policy"] == "delete"


def test_a_catalogue_error_exits_1_before_touching_the_cluster(
    tmp_path: Path, domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, catalogue(domain, classification="public"))
    code, out = run(
        capsys, "catalog", "apply", "--catalog", str(path), "--bootstrap", "127.0.0.1:1"
    )
    assert code == 1
    assert "public is lower than restricted" in out
