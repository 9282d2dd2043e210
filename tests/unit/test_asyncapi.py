"""The catalogue's AsyncAPI document: valid against the official AsyncAPI 3.0.0 JSON Schema,
every topic a channel, every principal's operations, the CloudEvents headers the bus really
sends, and docs/api/asyncapi.json is what the command writes today."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bus.cli.main import main
from bus.contract.envelope import DataClassification, Envelope, from_headers, to_headers
from bus.contract.plan import dataschema_uri
from bus.contract.projection import ProjectedSchema
from bus.contract.standard import load_standard
from bus.errors import ConfigError, EnvelopeError
from bus.ops.asyncapi import (
    AVRO_SCHEMA_FORMAT,
    DEFAULT_SERVERS,
    asyncapi_document,
    asyncapi_json,
)
from bus.ops.asyncapi_headers import OPTIONAL_HEADERS, REQUIRED_HEADERS
from bus.ops.catalog import load_catalog
from bus.ops.contract_topics import subscribed_topics

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "api" / "asyncapi.json"
OFFICIAL = ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"
REGENERATE = "spbe-bus catalog asyncapi --output docs/api/asyncapi.json"
STANDARD = load_standard()
CATALOG, _ = load_catalog(standard=STANDARD)
DOCUMENT = asyncapi_document(CATALOG, STANDARD)
PENDUDUK = "spbe.dukcapil.penduduk.v1"


def official_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft7Validator  # the draft its $schema declares
    cls.check_schema(schema)
    return cls(schema)


VALIDATOR = official_validator()


def resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOCUMENT
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_the_document_of_the_shipped_catalogue_validates_against_the_official_schema() -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(DOCUMENT)]
    assert errors == []
    assert DOCUMENT["asyncapi"] == "3.0.0"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        node = document
        for part in parents:
            node = node[part]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _set("asyncapi", "2.6.0"),
        _set("info|title", KeyError),
        _set("servers|kafka-1|protocol", KeyError),
        _set("components|securitySchemes|scramSha512|type", "scramSha1"),
        _set(f"channels|{PENDUDUK}|bindings|kafka|partitions", 0),
        _set(f"operations|disdukcapil-siak.send.{PENDUDUK}|action", "publish"),
        _set("components|messages|PendudukUpdated|payload|schema|fields", KeyError),
        _set("components|messages|PendudukUpdated|headers|type", "headers"),
    ],
    ids=["version", "info", "protocol", "scheme", "partitions", "action", "avro", "headers"],
)
def test_a_broken_document_fails_the_official_schema(
    edit: Callable[[dict[str, Any]], None],
) -> None:
    broken = copy.deepcopy(DOCUMENT)
    edit(broken)
    assert not VALIDATOR.is_valid(broken)


def test_every_reference_points_into_the_document() -> None:
    found = list(refs(DOCUMENT))
    assert len(found) > 50
    for pointer in found:
        assert resolve(pointer) is not None


def test_each_operation_names_its_channel_and_only_messages_of_that_channel() -> None:
    for name, operation in DOCUMENT["operations"].items():
        channel = operation["channel"]["$ref"]
        assert operation["messages"], name
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), name


def test_every_raw_and_projected_topic_is_a_channel_whose_address_is_its_name() -> None:
    expected = {t.name for t in CATALOG.topics} | {e.topic for e in subscribed_topics(CATALOG)}
    assert set(DOCUMENT["channels"]) == expected
    assert f"{PENDUDUK}.for.dinsos-penduduk" in expected
    for name, channel in DOCUMENT["channels"].items():
        assert channel["address"] == name
    binding = DOCUMENT["channels"][PENDUDUK]["bindings"]["kafka"]
    assert binding["partitions"] == 12
    assert binding["replicas"] == 3
    assert binding["topicConfiguration"] == {
        "cleanup.policy": ["delete"], "retention.ms": -1, "min.insync.replicas": 2,
    }  # fmt: skip


def test_each_steward_application_sends_its_stewards_topics_and_nothing_else() -> None:
    sends = {
        (op["x-spbe-principal"], op["channel"]["$ref"].removeprefix("#/channels/"))
        for op in DOCUMENT["operations"].values()
        if op["action"] == "send" and op["x-spbe-principal"] != "spbe-contracts"
    }
    expected = {
        (principal, topic.name)
        for topic in CATALOG.topics
        for steward in CATALOG.stewards
        if steward.id == topic.steward
        for principal in steward.principals
    }
    assert sends == expected


def test_each_subscriber_receives_what_it_reads_in_its_own_group_and_no_raw_restricted_topic() -> (
    None
):
    receives = {
        op["x-spbe-principal"]: op
        for op in DOCUMENT["operations"].values()
        if op["action"] == "receive" and op["x-spbe-principal"] != "spbe-contracts"
    }
    for entry in subscribed_topics(CATALOG):
        operation = DOCUMENT["operations"][f"{entry.subscriber}.receive.{entry.topic}"]
        assert operation["channel"] == {"$ref": f"#/channels/{entry.topic}"}
        group = operation["bindings"]["kafka"]["groupId"]
        assert group == {"type": "string", "enum": [entry.subscriber]}
    assert {op["channel"]["$ref"] for op in receives.values()}.isdisjoint(
        {f"#/channels/{t.name}" for t in CATALOG.topics}
    )
    dinkes = receives["dinkes-penduduk"]
    assert dinkes["x-spbe-expires"] == "2026-12-31"
    assert dinkes["x-spbe-legal-basis"].startswith("PKS 470/0933/DISDUKCAPIL/2025")
    contracts = DOCUMENT["operations"][f"spbe-contracts.receive.{PENDUDUK}"]
    assert contracts["bindings"]["kafka"]["groupId"]["enum"] == ["spbe-contracts"]


def test_messages_carry_the_avro_schemas_raw_and_projected() -> None:
    messages = DOCUMENT["components"]["messages"]
    raw = messages["PendudukUpdated"]["payload"]
    assert raw == {
        "schemaFormat": AVRO_SCHEMA_FORMAT,
        "schema": dict(STANDARD["PendudukUpdated"].raw),
    }
    (dinkes,) = [s for s in CATALOG.subscriptions if s.subscriber == "dinkes-penduduk"]
    allowed = dinkes.allowed_fields["id.go.spbe.dukcapil.PendudukUpdated.v1"]
    projected = ProjectedSchema.derive(STANDARD["PendudukUpdated"], "dinkes-penduduk", allowed)
    message = messages["PendudukUpdated.for.dinkes-penduduk"]
    assert message["payload"]["schema"] == dict(projected.schema.raw)
    fields = {f["name"] for f in message["payload"]["schema"]["fields"]}
    assert "no_kk" not in fields
    assert "nik" in fields
    # dinkes-penduduk has no KematianDicatat in its contract: its channel has no such message
    channel = DOCUMENT["channels"][f"{PENDUDUK}.for.dinkes-penduduk"]
    assert set(channel["messages"]) == {"PendudukUpdated"}
    assert "nik" in message["x-spbe-pii-fields"]
    key = messages["PendudukUpdated"]["bindings"]["kafka"]["key"]["description"]
    assert "pseudonym" in key


def test_the_schema_id_encoding_is_the_length_of_the_header_every_value_starts_with() -> None:
    """The Kafka binding's schemaIdPayloadEncoding is a byte count (or a registry's name):
    the bytes before the Avro body, as the codec writes them."""
    schema = load_standard()["PendudukUpdated"]
    for message in DOCUMENT["components"]["messages"].values():
        binding = message["bindings"]["kafka"]
        assert binding["schemaIdLocation"] == "payload"
        assert binding["schemaIdPayloadEncoding"] == str(len(schema.single_object_header))


def test_the_header_names_are_those_the_envelope_sends_and_the_required_ones_are_required() -> None:
    sent = [name for name, _ in to_headers(full_envelope())]
    assert set(sent) == set(REQUIRED_HEADERS) | set(OPTIONAL_HEADERS)
    headers = DOCUMENT["components"]["messages"]["PendudukUpdated"]["headers"]
    assert set(headers["properties"]) == set(sent)
    assert headers["required"] == list(REQUIRED_HEADERS)
    for name in REQUIRED_HEADERS:
        with pytest.raises(EnvelopeError, match=name):
            from_headers([(n, v) for n, v in to_headers(full_envelope()) if n != name])


def full_envelope(source: str = "ID/PEMDA-3273/DISDUKCAPIL/siak") -> Envelope:
    return Envelope(
        source=source,
        type="id.go.spbe.dukcapil.PendudukUpdated.v1",
        steward="DISDUKCAPIL",
        partitionkey="k3Jx0pVb8sQm",
        dataclassification=DataClassification.RESTRICTED,
        time=datetime(2026, 6, 1, 8, 30, tzinfo=UTC),
        subject="penduduk",
        dataschema=dataschema_uri(STANDARD["PendudukUpdated"]),
        sequence=7,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        snapshot=True,
    )


def decoded(envelope: Envelope) -> dict[str, str]:
    return {name: value.decode() for name, value in to_headers(envelope)}


def test_the_headers_of_a_real_envelope_validate_and_another_stewards_do_not() -> None:
    headers = DOCUMENT["components"]["messages"]["PendudukUpdated"]["headers"]
    check = jsonschema.Draft7Validator(headers)
    check.validate(decoded(full_envelope()))
    assert not check.is_valid(decoded(full_envelope("ID/PEMDA-3273/DINSOS/siks")))
    assert not check.is_valid({**decoded(full_envelope()), "ce_dataclassification": "public"})


def test_projected_messages_require_the_contract_headers_of_their_subscription() -> None:
    message = DOCUMENT["components"]["messages"]["PendudukUpdated.for.dinsos-penduduk"]
    check = jsonschema.Draft7Validator(message["headers"])
    (dinsos,) = [s for s in CATALOG.subscriptions if s.subscriber == "dinsos-penduduk"]
    contract = {
        "ce_subscription": "dinsos-penduduk",
        "ce_purpose": dinsos.purpose,
        "ce_legalbasis": dinsos.legal_basis,
    }
    assert check.is_valid({**decoded(full_envelope()), **contract})
    assert not check.is_valid(decoded(full_envelope()))
    assert not check.is_valid({**decoded(full_envelope()), **contract, "ce_subscription": "x"})


def test_servers_use_scram_sha_512_over_tls_and_can_be_named() -> None:
    assert set(DOCUMENT["servers"]) == set(DEFAULT_SERVERS) == {"kafka-1", "kafka-2", "kafka-3"}
    server = DOCUMENT["servers"]["kafka-1"]
    assert server["host"] == "kafka-1.spbe.internal:9092"
    assert server["protocol"] == "kafka-secure"
    assert server["security"] == [{"$ref": "#/components/securitySchemes/scramSha512"}]
    assert DOCUMENT["components"]["securitySchemes"]["scramSha512"]["type"] == "scramSha512"
    named = asyncapi_document(CATALOG, STANDARD, servers={"bdg": "kafka.bandung.go.id:9093"})
    assert list(named["servers"]) == ["bdg"]
    assert VALIDATOR.is_valid(named)


@pytest.mark.parametrize("servers", [{}, {"kafka-1": ""}, {"": "h:1"}, {"a b": "h:1"}])
def test_a_server_without_a_name_or_host_is_refused(servers: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="server"):
        asyncapi_document(CATALOG, STANDARD, servers=servers)


def test_an_event_type_missing_from_the_standard_is_named() -> None:
    partial = {k: v for k, v in STANDARD.items() if k != "KematianDicatat"}
    with pytest.raises(ConfigError, match=r"KematianDicatat\.v1.*not in the data standard"):
        asyncapi_document(CATALOG, partial)


def test_the_committed_asyncapi_json_is_the_generated_document() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi_json(DOCUMENT), (
        f"docs/api/asyncapi.json is out of date with the catalogue; regenerate it: {REGENERATE}"
    )


def test_the_command_writes_json_and_yaml_of_the_same_document(tmp_path: Path) -> None:
    assert main(["catalog", "asyncapi", "--output", str(tmp_path / "a.json")]) == 0
    assert main(["catalog", "asyncapi", "--format", "yaml", "-o", str(tmp_path / "a.yaml"),
                 "--server", "bdg=kafka.bandung.go.id:9093"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads(asyncapi_json(DOCUMENT))
    from_yaml = yaml.safe_load((tmp_path / "a.yaml").read_text())
    assert from_yaml["servers"]["bdg"]["host"] == "kafka.bandung.go.id:9093"
    assert from_yaml["channels"] == json.loads(json.dumps(DOCUMENT["channels"]))


def test_a_bad_server_option_is_a_usage_error_naming_the_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["catalog", "asyncapi", "--server", "kafka-1"])
    assert exit_.value.code == 2
    assert "NAME=HOST:PORT" in capsys.readouterr().err
