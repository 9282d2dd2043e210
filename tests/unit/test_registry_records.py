"""Registry records and the state folded from them: pure, no broker."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from bus.contract.compatibility import CompatibilityMode
from bus.contract.schema import AvroSchema
from bus.contract.standard import load_standard
from bus.errors import ConfigError, IncompatibleSchemaError
from bus.registry import RegisteredSchema, RegistryError, RegistryState, SubjectConfig
from bus.registry.errors import SchemasRefusedError
from bus.registry.records import (
    ENV_PRINCIPAL,
    RecordKey,
    config_key,
    default_principal,
    parse_key,
    subject_of,
    validate_subject,
    version_key,
)
from bus.registry.state import FoldOutcome
from bus.registry.topic import topic_settings

Mode = CompatibilityMode
PENDUDUK = load_standard()["PendudukUpdated"]
SUBJECT = "id.go.spbe.dukcapil.PendudukUpdated.v1"
WHEN = datetime.datetime(2026, 3, 1, 8, 30, 15, 123000, tzinfo=datetime.UTC)


def with_optional_field(schema: AvroSchema, name: str) -> AvroSchema:
    raw = copy.deepcopy(dict(schema.raw))
    raw["fields"].append({"name": name, "type": ["null", "string"], "default": None})
    return AvroSchema.from_json(raw)


V2 = with_optional_field(PENDUDUK, "catatan_petugas")
V3 = with_optional_field(V2, "sumber_data")


def registered(
    schema: AvroSchema = PENDUDUK,
    version: int = 1,
    *,
    subject: str = SUBJECT,
    principal: str = "operator-diskominfo",
) -> RegisteredSchema:
    return RegisteredSchema(
        subject=subject,
        version=version,
        schema=schema,
        compatibility=Mode.BACKWARD,
        principal=principal,
        registered_at=WHEN,
    )


def config(mode: Mode, *, subject: str = SUBJECT, principal: str = "admin") -> SubjectConfig:
    return SubjectConfig(subject, mode, principal, WHEN)


def rec(record: RegisteredSchema | SubjectConfig) -> tuple[bytes, bytes]:
    return record.key, record.to_value()


# -- records -----------------------------------------------------------------------------------


def test_registered_schema_round_trips_through_its_record() -> None:
    original = registered()
    key, value = rec(original)
    back = RegisteredSchema.from_record(key, value, offset=7)
    assert back == original
    assert back.offset == 7
    assert back.schema.raw == PENDUDUK.raw


def test_version_record_value_has_the_documented_fields_and_the_full_schema() -> None:
    key, value = rec(registered())
    data = json.loads(value)
    assert key == f"{SUBJECT}/v1".encode()
    assert set(data) == {
        "subject",
        "version",
        "fingerprint",
        "schema",
        "compatibility",
        "principal",
        "registered_at",
    }
    assert data["fingerprint"] == f"{PENDUDUK.fingerprint:016x}"
    assert len(data["fingerprint"]) == 16
    assert data["schema"]["spbe.steward"] == "DISDUKCAPIL"  # attributes kept, not canonical form
    assert data["compatibility"] == "BACKWARD"
    assert data["registered_at"] == "2026-03-01T08:30:15.123000Z"


def test_subject_config_round_trips_through_its_record() -> None:
    original = config(Mode.FULL_TRANSITIVE)
    key, value = rec(original)
    assert key == f"{SUBJECT}/_config".encode()
    assert set(json.loads(value)) == {"subject", "compatibility", "principal", "changed_at"}
    assert SubjectConfig.from_record(key, value) == original


def test_keys_parse_into_subject_and_version() -> None:
    assert parse_key(version_key(SUBJECT, 12)) == RecordKey(SUBJECT, 12)
    assert parse_key(config_key(SUBJECT)) == RecordKey(SUBJECT, None)
    assert str(RecordKey(SUBJECT, 3)) == f"{SUBJECT}/v3"


@pytest.mark.parametrize(
    "key",
    [
        None,
        b"",
        b"no-slash",
        b"/v1",
        f"{SUBJECT}/v0".encode(),
        f"{SUBJECT}/x1".encode(),
        b"\xff/v1",
    ],
)
def test_malformed_keys_are_refused(key: bytes | None) -> None:
    with pytest.raises(RegistryError):
        parse_key(key)


def mutate(value: bytes, **changes: Any) -> bytes:
    data = json.loads(value)
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"fingerprint": "0000000000000000"}, "does not match its schema"),
        ({"fingerprint": "XYZ"}, "is not 16 hex digits"),
        ({"version": 2}, "its value is about"),
        ({"version": True}, "'version' must be an integer"),
        ({"principal": ""}, "'principal' must be a non-empty string"),
        ({"compatibility": "SIDEWAYS"}, "SIDEWAYS"),
        ({"registered_at": "2026-03-01T08:30:15"}, "RFC 3339 time with a zone"),
        ({"schema": {"type": "record", "name": "X", "fields": [{"name": "a"}]}}, "not valid"),
    ],
)
def test_malformed_version_records_are_refused_saying_what_is_wrong(
    changes: dict[str, Any], expected: str
) -> None:
    key, value = rec(registered())
    with pytest.raises(RegistryError, match=expected):
        RegisteredSchema.from_record(key, mutate(value, **changes))


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(RegistryError, match="not UTF-8 JSON"):
        RegisteredSchema.from_record(version_key(SUBJECT, 1), b"\x00garbage")


def test_subjects_with_a_slash_or_spaces_are_refused() -> None:
    for bad in ("", "a/b", "a b", "x" * 250):
        with pytest.raises(ConfigError):
            validate_subject(bad)
    assert validate_subject(SUBJECT) == SUBJECT


def test_a_schema_subject_is_its_event_type_and_one_without_it_has_none() -> None:
    assert subject_of(PENDUDUK) == SUBJECT
    raw = copy.deepcopy(dict(PENDUDUK.raw))
    del raw["spbe.dublincore"]
    with pytest.raises(ConfigError, match=r"spbe\.dublincore\.identifier"):
        subject_of(AvroSchema.from_json(raw))


def test_principal_comes_from_the_environment_else_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_PRINCIPAL, "petugas-3273")
    assert default_principal() == "petugas-3273"
    monkeypatch.delenv(ENV_PRINCIPAL)
    monkeypatch.setattr("getpass.getuser", lambda: "budi")
    assert default_principal() == "budi"

    def no_user() -> str:
        raise OSError("no user")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert default_principal() == "unknown"


# -- folding -----------------------------------------------------------------------------------


def test_versions_are_listed_in_version_order_whatever_the_offsets() -> None:
    state = RegistryState.folded(
        [
            (0, *rec(registered(V2, 2))),
            (1, *rec(registered(PENDUDUK, 1))),
            (5, *rec(registered(V3, 3))),
        ]
    )
    assert [v.version for v in state.versions(SUBJECT)] == [1, 2, 3]
    assert [v.offset for v in state.versions(SUBJECT)] == [1, 0, 5]
    latest = state.latest(SUBJECT)
    assert latest is not None
    assert latest.schema == V3
    assert state.next_version(SUBJECT) == 4
    assert state.history(SUBJECT) == [PENDUDUK, V2, V3]
    assert state.subjects() == [SUBJECT]
    assert state.next_offset == 6


def test_the_same_record_twice_is_a_duplicate_not_a_new_version() -> None:
    state = RegistryState()
    assert state.apply(0, *rec(registered())) is FoldOutcome.ADDED
    assert state.apply(1, *rec(registered())) is FoldOutcome.DUPLICATE
    assert len(state.versions(SUBJECT)) == 1
    assert state.shadowed(SUBJECT) == []


def test_earlier_offset_wins_a_version_written_twice_and_the_key_is_marked_for_restoring() -> None:
    first, second = registered(V2, 2, principal="a"), registered(V3, 2, principal="b")
    state = RegistryState.folded([(0, *rec(registered())), (1, *rec(first)), (2, *rec(second))])
    assert state.version(SUBJECT, 2) == first
    assert state.schema_for(V3.fingerprint) is None  # the loser is not resolvable
    assert state.shadowed(SUBJECT) == [first]  # compaction would keep the loser: write again
    assert state.apply(3, *rec(first)) is FoldOutcome.DUPLICATE
    assert state.shadowed(SUBJECT) == []


def test_a_corrupt_record_is_skipped_and_later_records_still_apply() -> None:
    state = RegistryState()
    assert state.apply(0, b"rubbish", b"{}") is FoldOutcome.SKIPPED
    assert state.apply(1, version_key(SUBJECT, 1), b"not json") is FoldOutcome.SKIPPED
    assert state.apply(2, *rec(registered())) is FoldOutcome.ADDED
    assert [s.offset for s in state.skipped] == [0, 1]
    assert "not <subject>/v<version>" in state.skipped[0].reason
    assert state.versions(SUBJECT) == [registered()]


def test_a_corrupt_record_after_a_version_marks_that_version_for_restoring() -> None:
    state = RegistryState.folded([(0, *rec(registered())), (1, version_key(SUBJECT, 1), b"{}")])
    assert state.version(SUBJECT, 1) == registered()
    assert state.shadowed(SUBJECT) == [registered()]


def test_mode_is_the_default_until_a_config_record_and_the_last_config_wins() -> None:
    state = RegistryState()
    assert state.mode_of(SUBJECT) is Mode.BACKWARD
    assert state.config_of(SUBJECT) is None
    state.apply(0, *rec(config(Mode.FULL)))
    state.apply(1, *rec(config(Mode.NONE, principal="other")))
    assert state.mode_of(SUBJECT) is Mode.NONE
    assert state.config_of(SUBJECT) == config(Mode.NONE, principal="other")
    assert state.mode_of("id.go.spbe.lain.Lain.v1") is Mode.BACKWARD
    assert state.subjects() == []  # settings alone do not make a subject


def test_the_default_mode_can_be_chosen_and_is_read_from_text() -> None:
    assert RegistryState(Mode.FULL).mode_of(SUBJECT) is Mode.FULL
    assert RegistryState("forward_transitive").mode_of(SUBJECT) is Mode.FORWARD_TRANSITIVE
    with pytest.raises(ConfigError, match="sideways"):
        RegistryState("sideways")


def test_a_tombstone_deletes_a_version_or_resets_the_mode() -> None:
    state = RegistryState.folded(
        [
            (0, *rec(registered())),
            (1, *rec(registered(V2, 2))),
            (2, *rec(config(Mode.FULL))),
            (3, version_key(SUBJECT, 2), None),
            (4, config_key(SUBJECT), None),
        ]
    )
    assert [v.version for v in state.versions(SUBJECT)] == [1]
    assert state.schema_for(V2.fingerprint) is None
    assert state.mode_of(SUBJECT) is Mode.BACKWARD
    assert state.apply(5, *rec(registered(V3, 2))) is FoldOutcome.ADDED  # the key is free again


def test_schemas_are_found_by_fingerprint_across_subjects() -> None:
    other = "id.go.spbe.uji.PendudukUpdated.v1"
    state = RegistryState.folded(
        [
            (0, *rec(registered())),
            (1, *rec(registered(subject=other))),
            (2, *rec(registered(V2, 2))),
        ]
    )
    assert state.schema_for(PENDUDUK.fingerprint) == PENDUDUK
    found = state.registered(PENDUDUK.fingerprint)
    assert found is not None
    assert found.subject == SUBJECT
    assert state.find(other, PENDUDUK.fingerprint) == registered(subject=other)
    assert state.find(other, V2.fingerprint) is None
    assert state.schema_for(12345) is None


def test_records_out_of_offset_order_are_a_programming_error() -> None:
    state = RegistryState()
    state.apply(5, *rec(registered()))
    with pytest.raises(ValueError, match="offset 4"):
        state.apply(4, *rec(registered(V2, 2)))


# -- topic settings and errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("brokers", "replication", "min_isr"), [(1, 1, "1"), (2, 2, "1"), (3, 3, "2"), (5, 3, "2")]
)
def test_registry_topic_replicates_to_at_most_three_brokers(
    brokers: int, replication: int, min_isr: str
) -> None:
    factor, configs = topic_settings(brokers)
    assert factor == replication
    assert configs == {"cleanup.policy": "compact", "min.insync.replicas": min_isr}


def test_refusing_several_schemas_explains_each_and_counts_what_was_kept() -> None:
    refused = [
        IncompatibleSchemaError("a.v1", "BACKWARD", ["field 'x' was added without a default"]),
        IncompatibleSchemaError("b.v1", "FULL", ["field 'y' changed type from int to string"]),
    ]
    error = SchemasRefusedError([registered()], refused)
    assert isinstance(error, IncompatibleSchemaError)
    assert str(error).startswith("2 of 3 schemas refused (1 registered):")
    assert "field 'x' was added without a default" in str(error)
    assert "b.v1: field 'y' changed type" in error.reasons[1]
