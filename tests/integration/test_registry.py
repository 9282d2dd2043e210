"""The schema registry against a real broker: each test has its own registry topic."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bus.contract.codec import decode, encode, read_header
from bus.contract.compatibility import CompatibilityMode
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import (
    IncompatibleSchemaError,
    KafkaUnavailableError,
    LifecycleError,
    UnknownSchemaError,
)
from bus.registry import (
    RegisteredSchema,
    RegistryError,
    RegistryUnavailableError,
    SchemaRegistry,
    SchemasRefusedError,
    register_standard,
)
from bus.registry.records import version_key
from tests.conftest import TopicFactory
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration
Mode = CompatibilityMode
STANDARD = load_standard()
SUBJECT = "id.go.spbe.uji.WargaDicatat.v1"


def warga_raw() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "WargaDicatat",
        "namespace": "id.go.spbe.uji",
        "spbe.steward": "DISDUKCAPIL",
        "spbe.dublincore": {"identifier": SUBJECT},
        "fields": [
            {"name": "id_warga", "type": "string"},
            {"name": "nama", "type": "string", "spbe.pii": True},
            {"name": "umur", "type": "int"},
            {
                "name": "status",
                "type": {"type": "enum", "name": "Status", "symbols": ["HIDUP", "MENINGGAL"]},
            },
        ],
    }


def warga(edit: Callable[[dict[str, Any]], object] | None = None) -> AvroSchema:
    raw = copy.deepcopy(warga_raw())
    if edit is not None:
        edit(raw)
    return AvroSchema.from_json(raw)


def add_optional(name: str) -> Callable[[dict[str, Any]], object]:
    return lambda raw: raw["fields"].append(
        {"name": name, "type": ["null", "string"], "default": None}
    )


def drop_field(name: str) -> Callable[[dict[str, Any]], object]:
    def edit(raw: dict[str, Any]) -> None:
        raw["fields"] = [f for f in raw["fields"] if f["name"] != name]

    return edit


def retype_umur(raw: dict[str, Any]) -> None:
    raw["fields"][2]["type"] = "string"


def rename_symbol(raw: dict[str, Any]) -> None:
    raw["fields"][3]["type"]["symbols"] = ["HIDUP", "WAFAT"]


V1 = warga()
V2 = warga(add_optional("catatan"))


@pytest.fixture
async def registry(kafka_bootstrap: str, topic_name: str) -> AsyncIterator[SchemaRegistry]:
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name, principal="uji") as started:
        yield started


async def end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        offsets = await consumer.end_offsets([tp])
    finally:
        await consumer.stop()
    end: int = offsets[tp]
    return end


# -- registering -------------------------------------------------------------------------------


async def test_the_five_standard_schemas_register_as_version_1_and_again_writes_nothing(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    first = await register_standard(registry, STANDARD)
    assert sorted(r.subject for r in first) == sorted(s.event_type or "" for s in STANDARD.values())
    assert {r.version for r in first} == {1}
    assert {r.principal for r in first} == {"uji"}
    assert await end_offset(kafka_bootstrap, topic_name) == 5

    again = await register_standard(registry, STANDARD)
    assert again == first
    assert await end_offset(kafka_bootstrap, topic_name) == 5
    records = await read_all(kafka_bootstrap, topic_name, 5)
    stored = json.loads(records[0].value or b"")
    assert stored["schema"] == dict(STANDARD[_name_of(stored["subject"])].raw)  # attrs kept


def _name_of(subject: str) -> str:
    return subject.split(".")[-2]


async def test_the_registry_topic_is_created_compacted_with_one_partition(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic_name])
        resource = ConfigResource(
            ConfigResourceType.TOPIC,
            topic_name,
            {"cleanup.policy": None, "min.insync.replicas": None},
        )
        (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 1
    assert len(described["partitions"][0]["replicas"]) == 1  # a one-broker test cluster
    entries = {
        e["config_names"]: e["config_value"]
        for e in response.to_object()["resources"][0]["config_entries"]
    }
    assert entries == {"cleanup.policy": "compact", "min.insync.replicas": "1"}


async def test_a_second_registry_resolves_unknown_fingerprints_after_one_refresh(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as reader:
        await register_standard(registry, STANDARD)
        penduduk = STANDARD["PendudukUpdated"]
        assert reader.schema_for(penduduk.fingerprint) is None  # not read yet
        assert await reader.lookup(penduduk.fingerprint) == penduduk  # refreshes once
        assert reader.subjects() == registry.subjects()
        assert len(reader.subjects()) == 5
        with pytest.raises(UnknownSchemaError, match="0x00000000000004d2"):
            await reader.lookup(1234)
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as late:
        assert late.subjects() == registry.subjects()  # read at start


async def test_a_compatible_v2_gets_version_2_and_a_v1_reader_decodes_its_bytes(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as reader:
        one = await registry.register(V1)
        two = await registry.register(V2)
        assert (one.version, two.version) == (1, 2)
        assert two.compatibility is Mode.BACKWARD
        data = encode(V2, {"id_warga": "W-1", "nama": "Siti", "umur": 30, "status": "HIDUP"})
        writer = await reader.lookup(read_header(data))
        assert writer == V2
        decoded = decode(data, reader, reader=V1)
        assert decoded.writer == V2
        assert decoded.datum == {"id_warga": "W-1", "nama": "Siti", "umur": 30, "status": "HIDUP"}
        latest = reader.latest(SUBJECT)
        assert latest is not None
        assert latest.version == 2


@pytest.mark.parametrize(
    ("mode", "edit", "field", "why"),
    [
        (Mode.FORWARD, drop_field("umur"), "umur", "was removed"),
        (Mode.BACKWARD, retype_umur, "umur", "changed type from int to string"),
        (Mode.BACKWARD, rename_symbol, "status", "lost enum symbol(s) MENINGGAL"),
    ],
    ids=["removed-field-forward", "changed-type", "renamed-enum-symbol"],
)
async def test_an_incompatible_change_is_refused_naming_the_field_and_nothing_is_written(
    registry: SchemaRegistry,
    kafka_bootstrap: str,
    topic_name: str,
    mode: Mode,
    edit: Callable[[dict[str, Any]], object],
    field: str,
    why: str,
) -> None:
    await registry.register(V1)
    await registry.set_mode(SUBJECT, mode)
    before = await end_offset(kafka_bootstrap, topic_name)
    with pytest.raises(IncompatibleSchemaError) as refused:
        await registry.register(warga(edit))
    assert refused.value.subject == SUBJECT
    assert refused.value.mode == mode.value
    assert f"field '{field}' {why}" in str(refused.value)
    assert await end_offset(kafka_bootstrap, topic_name) == before
    assert [v.version for v in registry.versions(SUBJECT)] == [1]


async def test_under_full_a_change_that_is_only_backward_compatible_is_refused(
    registry: SchemaRegistry,
) -> None:
    only_backward = warga(drop_field("nama"))  # new readers skip it; old readers need it
    await registry.register(V1)
    config = await registry.set_mode(SUBJECT, "full")
    assert config.compatibility is Mode.FULL
    assert config.principal == "uji"
    assert registry.mode_of(SUBJECT) is Mode.FULL
    with pytest.raises(IncompatibleSchemaError, match="field 'nama' was removed"):
        await registry.register(only_backward)
    await registry.set_mode(SUBJECT, Mode.BACKWARD)
    accepted = await registry.register(only_backward)
    assert (accepted.version, accepted.compatibility) == (2, Mode.BACKWARD)


async def test_mode_changes_are_seen_by_other_registries(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    await registry.set_mode(SUBJECT, Mode.FORWARD_TRANSITIVE)
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as other:
        assert other.mode_of(SUBJECT) is Mode.FORWARD_TRANSITIVE
        assert other.mode_of("id.go.spbe.uji.Lain.v1") is Mode.BACKWARD


async def test_register_standard_keeps_the_compatible_schemas_when_one_is_refused(
    registry: SchemaRegistry,
) -> None:
    penduduk = STANDARD["PendudukUpdated"]
    subject = penduduk.event_type or ""
    await registry.register(penduduk)
    raw = copy.deepcopy(dict(penduduk.raw))
    raw["fields"].append({"name": "wajib_baru", "type": "string"})  # no default: not BACKWARD
    changed = {**STANDARD, "PendudukUpdated": AvroSchema.from_json(raw)}
    with pytest.raises(SchemasRefusedError) as refused:
        await register_standard(registry, changed)
    assert [e.subject for e in refused.value.refused] == [subject]
    assert "field 'wajib_baru' was added without a default" in str(refused.value)
    assert len(refused.value.registered) == 4
    assert len(registry.subjects()) == 5
    assert [v.version for v in registry.versions(subject)] == [1]


# -- concurrent registrars ---------------------------------------------------------------------


async def test_two_registries_registering_at_once_get_distinct_versions_both_readable(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    await registry.register(V1)
    left, right = warga(add_optional("catatan_kiri")), warga(add_optional("catatan_kanan"))
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as other:
        a, b = await asyncio.gather(registry.register(left), other.register(right))
    assert {a.version, b.version} == {2, 3}
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as reader:
        assert await reader.lookup(left.fingerprint) == left
        assert await reader.lookup(right.fingerprint) == right
        assert [v.version for v in reader.versions(SUBJECT)] == [1, 2, 3]


class _CollidingRegistry(SchemaRegistry):
    """Holds its first write until the other registrar is about to write too: a sure race."""

    def __init__(self, *args: Any, barrier: asyncio.Barrier, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._barrier: asyncio.Barrier | None = barrier

    async def _write(self, key: bytes, value: bytes) -> int:
        if self._barrier is not None:
            barrier, self._barrier = self._barrier, None
            await barrier.wait()
        return await super()._write(key, value)


async def test_a_registrar_that_loses_a_version_number_retries_and_restores_the_winner(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    await registry.register(V1)
    left, right = warga(add_optional("catatan_kiri")), warga(add_optional("catatan_kanan"))
    barrier = asyncio.Barrier(2)
    first = _CollidingRegistry(kafka_bootstrap, topic=topic_name, barrier=barrier)
    second = _CollidingRegistry(kafka_bootstrap, topic=topic_name, barrier=barrier)
    async with first, second:
        a, b = await asyncio.gather(first.register(left), second.register(right))
    assert {a.version, b.version} == {2, 3}
    winner: RegisteredSchema = a if a.version == 2 else b
    # Both wrote v2; the one written later is followed by the winner again, so that
    # compaction (which keeps a key's last record) keeps the winner.
    records = await read_all(kafka_bootstrap, topic_name, 5)
    v2_records = [r for r in records if r.key == version_key(SUBJECT, 2)]
    assert len(v2_records) == 3
    assert v2_records[-1].value == winner.to_value()
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as reader:
        assert reader.version(SUBJECT, 2) == winner
        assert {await reader.lookup(s.fingerprint) for s in (left, right)} == {left, right}


# -- lifecycle and failures --------------------------------------------------------------------


async def test_a_registry_used_before_start_or_after_stop_says_to_start_it(
    kafka_bootstrap: str, topic_name: str
) -> None:
    registry = SchemaRegistry(kafka_bootstrap, topic=topic_name)
    with pytest.raises(LifecycleError, match="not started") as error:
        registry.subjects()
    assert "await registry.start()" in str(error.value)
    with pytest.raises(LifecycleError):
        await registry.register(V1)
    async with registry:
        assert registry.subjects() == []
    with pytest.raises(LifecycleError):
        registry.schema_for(V1.fingerprint)


async def test_an_unreachable_broker_gives_an_error_naming_the_address_and_the_fix() -> None:
    registry = SchemaRegistry("127.0.0.1:1", timeout_s=10, start_timeout_s=2)
    with pytest.raises(RegistryUnavailableError) as error:
        await registry.start()
    assert "127.0.0.1:1" in str(error.value)
    assert "within 2 s" in str(error.value)
    assert "spbe-bus kafka up" in str(error.value)
    assert isinstance(error.value, KafkaUnavailableError)
    assert error.value.retriable
    assert not registry.started


async def test_an_existing_topic_that_would_delete_old_schemas_is_refused(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(configs={"cleanup.policy": "delete"})
    with pytest.raises(RegistryError, match=r"cleanup\.policy=delete") as error:
        await SchemaRegistry(kafka_bootstrap, topic=topic).start()
    assert "--add-config cleanup.policy=compact" in str(error.value)


async def test_an_existing_topic_with_several_partitions_is_refused(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3, configs={"cleanup.policy": "compact"})
    with pytest.raises(RegistryError, match="has 3 partitions"):
        await SchemaRegistry(kafka_bootstrap, topic=topic).start()


async def test_a_corrupt_record_in_the_topic_is_skipped_and_the_rest_is_read(
    registry: SchemaRegistry, kafka_bootstrap: str, topic_name: str
) -> None:
    await registry.register(V1)
    await produce(kafka_bootstrap, topic_name, [b"not json"], key=b"rubbish")
    await registry.register(V2)
    async with SchemaRegistry(kafka_bootstrap, topic=topic_name) as reader:
        assert [v.version for v in reader.versions(SUBJECT)] == [1, 2]
        assert [s.offset for s in reader.skipped] == [1]
