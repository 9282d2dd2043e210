"""Compatibility modes, judged by the Apache avro checker, explained field by field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from bus.contract.compatibility import (
    DEFAULT_MODE,
    CompatibilityMode,
    check_compatible,
    incompatibilities,
    parse_mode,
)
from bus.contract.schema import AvroSchema
from bus.errors import ConfigError, IncompatibleSchemaError

Mode = CompatibilityMode


def base_raw() -> dict[str, Any]:
    return {
        "type": "record",
        "name": "PendudukUpdated",
        "namespace": "id.go.spbe.dukcapil",
        "spbe.steward": "DISDUKCAPIL",
        "fields": [
            {"name": "nik_token", "type": "string"},
            {"name": "nama", "type": "string", "spbe.pii": True},
            {
                "name": "alamat",
                "type": {
                    "type": "record",
                    "name": "Alamat",
                    "fields": [
                        {"name": "jalan", "type": "string", "spbe.pii": True},
                        {"name": "kode_wilayah", "type": "string", "spbe.ref": "KodeWilayah"},
                    ],
                },
            },
            {
                "name": "status_perkawinan",
                "type": {
                    "type": "enum",
                    "name": "StatusPerkawinan",
                    "symbols": ["BELUM_KAWIN", "KAWIN", "CERAI_HIDUP", "CERAI_MATI"],
                },
            },
            {"name": "catatan", "type": ["null", "string"], "default": None},
            {"name": "sequence", "type": "int"},
            {
                "name": "iuran",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2},
            },
        ],
    }


BASE = AvroSchema.from_json(base_raw())


def changed(edit: Callable[[dict[str, Any]], object]) -> AvroSchema:
    raw = copy.deepcopy(base_raw())
    edit(raw)
    return AvroSchema.from_json(raw)


def fields(raw: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = raw["fields"]
    return result


def alamat_fields(raw: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = raw["fields"][2]["type"]["fields"]
    return result


def field_named(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(spec for spec in fields(raw) if spec["name"] == name)


ADD_NESTED_REQUIRED = changed(
    lambda raw: alamat_fields(raw).append({"name": "kode_pos", "type": "string"})
)
REMOVE_REQUIRED = changed(lambda raw: fields(raw).pop(1))  # nama
ADD_OPTIONAL = changed(
    lambda raw: fields(raw).append(
        {"name": "pekerjaan", "type": ["null", "string"], "default": None}
    )
)


def checker_says_compatible(reader: AvroSchema, writer: AvroSchema) -> bool:
    """The Apache checker's own verdict, for comparison."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(dict(reader.raw))),
        avro.schema.parse(json.dumps(dict(writer.raw))),
    )
    return bool(result.compatibility is SchemaCompatibilityType.compatible)


# -- single steps ----------------------------------------------------------------------------


def test_added_field_without_default_is_refused_under_backward_naming_the_nested_field() -> None:
    reasons = incompatibilities(ADD_NESTED_REQUIRED, [BASE], Mode.BACKWARD)
    assert reasons == [
        "field 'alamat.kode_pos' was added without a default: a reader of the new schema "
        "cannot read events written with version 1 "
        "(READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2/type/fields/2)"
    ]
    assert not checker_says_compatible(ADD_NESTED_REQUIRED, BASE)


def test_added_field_without_default_is_accepted_under_forward() -> None:
    assert incompatibilities(ADD_NESTED_REQUIRED, [BASE], Mode.FORWARD) == []


def test_removed_field_without_default_is_refused_under_forward() -> None:
    reasons = incompatibilities(REMOVE_REQUIRED, [BASE], Mode.FORWARD)
    assert reasons == [
        "field 'nama' was removed, and version 1 has no default for it: a reader of version 1 "
        "cannot read events written with the new schema "
        "(READER_FIELD_MISSING_DEFAULT_VALUE at /fields/1)"
    ]
    assert not checker_says_compatible(BASE, REMOVE_REQUIRED)


def test_removed_field_is_accepted_under_backward() -> None:
    assert incompatibilities(REMOVE_REQUIRED, [BASE], Mode.BACKWARD) == []


@pytest.mark.parametrize("mode", [Mode.BACKWARD, Mode.FORWARD, Mode.FULL])
def test_changed_field_type_is_refused_naming_old_and_new_type(mode: CompatibilityMode) -> None:
    new = changed(lambda raw: field_named(raw, "sequence").update(type="string"))
    reasons = incompatibilities(new, [BASE], mode)
    assert reasons
    for reason in reasons:
        assert reason.startswith("field 'sequence' changed type from int to string:")
        assert "TYPE_MISMATCH at /fields/5/type" in reason


def test_widening_int_to_long_is_backward_but_not_forward_compatible() -> None:
    new = changed(lambda raw: field_named(raw, "sequence").update(type="long"))
    assert incompatibilities(new, [BASE], Mode.BACKWARD) == []
    assert incompatibilities(new, [BASE], Mode.FORWARD) == [
        "field 'sequence' changed type from int to long: a reader of version 1 cannot read "
        "events written with the new schema (TYPE_MISMATCH at /fields/5/type: "
        "reader type: int not compatible with writer type: long)"
    ]


def test_making_an_optional_field_required_is_refused_under_backward() -> None:
    new = changed(lambda raw: field_named(raw, "catatan").update(type="string", default=""))
    [reason] = incompatibilities(new, [BASE], Mode.BACKWARD)
    assert reason.startswith("field 'catatan' changed type from [null, string] to string:")
    assert "writer type: null" in reason


def test_renamed_enum_symbol_is_refused_both_ways() -> None:
    def rename(raw: dict[str, Any]) -> None:
        field_named(raw, "status_perkawinan")["type"]["symbols"][0] = "TIDAK_KAWIN"

    new = changed(rename)
    [backward] = incompatibilities(new, [BASE], Mode.BACKWARD)
    [forward] = incompatibilities(new, [BASE], Mode.FORWARD)
    assert backward.startswith("field 'status_perkawinan' lost enum symbol(s) BELUM_KAWIN:")
    assert "MISSING_ENUM_SYMBOLS at /fields/3/type/symbols" in backward
    assert forward.startswith("field 'status_perkawinan' gained enum symbol(s) TIDAK_KAWIN,")
    assert incompatibilities(new, [BASE], Mode.FULL) == [backward, forward]


def test_renamed_nested_record_is_refused_and_an_alias_fixes_backward() -> None:
    renamed = changed(lambda raw: field_named(raw, "alamat")["type"].update(name="Domisili"))
    [reason] = incompatibilities(renamed, [BASE], Mode.BACKWARD)
    assert reason.startswith(
        "the record type of field 'alamat' was renamed from id.go.spbe.dukcapil.Alamat to "
        "id.go.spbe.dukcapil.Domisili"
    )
    assert "NAME_MISMATCH at /fields/2/type/name" in reason

    aliased = changed(
        lambda raw: field_named(raw, "alamat")["type"].update(
            name="Domisili", aliases=["id.go.spbe.dukcapil.Alamat"]
        )
    )
    assert incompatibilities(aliased, [BASE], Mode.BACKWARD) == []


@pytest.mark.parametrize("mode", list(CompatibilityMode))
def test_added_optional_field_with_default_is_accepted_in_every_mode(
    mode: CompatibilityMode,
) -> None:
    assert incompatibilities(ADD_OPTIONAL, [BASE], mode) == []


def test_changed_docs_and_governance_attributes_are_fully_compatible() -> None:
    def annotate(raw: dict[str, Any]) -> None:
        raw["doc"] = "Perubahan data penduduk"
        raw["spbe.classification"] = "restricted"
        field_named(raw, "nik_token")["spbe.pii"] = True
        del field_named(raw, "nama")["spbe.pii"]

    assert incompatibilities(changed(annotate), [BASE], Mode.FULL_TRANSITIVE) == []


def test_changed_decimal_scale_is_refused_although_avro_resolution_allows_it() -> None:
    new = changed(lambda raw: field_named(raw, "iuran")["type"].update(scale=4))
    assert checker_says_compatible(new, BASE)
    assert checker_says_compatible(BASE, new)
    [reason] = incompatibilities(new, [BASE], Mode.FULL)
    assert reason.startswith(
        "field 'iuran' changed logical type from decimal(18,2) to decimal(18,4) since version 1"
    )
    assert "LOGICAL_TYPE_MISMATCH at /fields/6/type" in reason
    assert incompatibilities(new, [BASE], Mode.NONE) == []


def test_several_problems_are_all_reported() -> None:
    def break_twice(raw: dict[str, Any]) -> None:
        alamat_fields(raw).append({"name": "rt", "type": "string"})
        fields(raw).append({"name": "rw", "type": "string"})

    reasons = incompatibilities(changed(break_twice), [BASE], Mode.BACKWARD)
    assert [reason.split(":")[0] for reason in reasons] == [
        "field 'alamat.rt' was added without a default",
        "field 'rw' was added without a default",
    ]


# -- transitive modes --------------------------------------------------------------------------


def with_fields(*extra: dict[str, Any]) -> AvroSchema:
    return changed(lambda raw: fields(raw).extend(extra))


def test_backward_transitive_checks_every_earlier_version() -> None:
    v1 = BASE
    v2 = with_fields({"name": "agama", "type": "string", "default": "TIDAK_DIKETAHUI"})
    v3 = with_fields({"name": "agama", "type": "string"})  # the default is dropped

    assert incompatibilities(v3, [v1, v2], Mode.BACKWARD) == []
    assert incompatibilities(v3, [v1, v2], Mode.BACKWARD_TRANSITIVE) == [
        "field 'agama' was added without a default: a reader of the new schema cannot read "
        "events written with version 1 (READER_FIELD_MISSING_DEFAULT_VALUE at /fields/7)"
    ]


def test_forward_transitive_checks_every_earlier_version() -> None:
    v1 = with_fields({"name": "agama", "type": "string"})
    v2 = with_fields({"name": "agama", "type": "string", "default": "TIDAK_DIKETAHUI"})
    v3 = BASE  # agama removed

    assert incompatibilities(v3, [v1, v2], Mode.FORWARD) == []
    [reason] = incompatibilities(v3, [v1, v2], Mode.FORWARD_TRANSITIVE)
    assert reason.startswith("field 'agama' was removed, and version 1 has no default for it")


def test_full_transitive_checks_both_directions_against_every_version() -> None:
    v1 = with_fields({"name": "agama", "type": "string"})
    v2 = with_fields({"name": "agama", "type": "string", "default": "TIDAK_DIKETAHUI"})
    v3 = BASE

    assert incompatibilities(v3, [v1, v2], Mode.FULL) == []
    assert len(incompatibilities(v3, [v1, v2], Mode.FULL_TRANSITIVE)) == 1


def test_none_accepts_any_change() -> None:
    unrelated = AvroSchema.from_json(
        {"type": "record", "name": "Lain", "fields": [{"name": "x", "type": "boolean"}]}
    )
    assert incompatibilities(unrelated, [BASE, REMOVE_REQUIRED], Mode.NONE) == []


@pytest.mark.parametrize("mode", list(CompatibilityMode))
def test_the_first_version_of_a_subject_is_always_accepted(mode: CompatibilityMode) -> None:
    assert incompatibilities(REMOVE_REQUIRED, [], mode) == []


# -- check_compatible and modes ----------------------------------------------------------------


def test_check_compatible_raises_with_subject_mode_and_reasons() -> None:
    with pytest.raises(IncompatibleSchemaError) as caught:
        check_compatible("spbe.dukcapil.penduduk.v1-value", REMOVE_REQUIRED, [BASE], Mode.FULL)
    error = caught.value
    assert error.subject == "spbe.dukcapil.penduduk.v1-value"
    assert error.mode == "FULL"
    assert len(error.reasons) == 1
    assert "field 'nama' was removed" in str(error)
    assert "is not FULL compatible" in str(error)


def test_check_compatible_returns_quietly_for_a_compatible_change() -> None:
    check_compatible("spbe.dukcapil.penduduk.v1-value", ADD_OPTIONAL, [BASE], Mode.FULL_TRANSITIVE)


def test_backward_is_the_default_mode() -> None:
    assert DEFAULT_MODE is Mode.BACKWARD


@pytest.mark.parametrize(
    ("text", "mode"),
    [("BACKWARD", Mode.BACKWARD), ("full_transitive", Mode.FULL_TRANSITIVE), (" none ", Mode.NONE)],
)
def test_modes_are_read_from_config_text_case_insensitively(
    text: str, mode: CompatibilityMode
) -> None:
    assert parse_mode(text) is mode


def test_an_unknown_mode_is_a_config_error_listing_the_modes() -> None:
    with pytest.raises(ConfigError, match="'SIDEWAYS' is unknown; use one of BACKWARD"):
        parse_mode("SIDEWAYS")


def wilayah(*extra: dict[str, Any]) -> AvroSchema:
    return AvroSchema.from_json(
        {
            "type": "record",
            "name": "Wilayah",
            "fields": [
                {"name": "kode", "type": "string"},
                {"name": "bagian", "type": {"type": "array", "items": "Wilayah"}},
                *extra,
            ],
        }
    )


def test_recursive_schemas_are_checked_without_looping() -> None:
    v1 = wilayah()
    v2 = wilayah({"name": "nama", "type": "string"})

    assert incompatibilities(v2, [v1], Mode.FORWARD) == []
    assert incompatibilities(v1, [v1], Mode.FULL_TRANSITIVE) == []
    [reason] = incompatibilities(v2, [v1], Mode.BACKWARD)
    assert reason.startswith("field 'nama' was added without a default")


def test_a_mode_may_be_given_as_text() -> None:
    assert incompatibilities(REMOVE_REQUIRED, [BASE], "backward") == []
    with pytest.raises(IncompatibleSchemaError, match="is not FORWARD compatible"):
        check_compatible("s", REMOVE_REQUIRED, [BASE], "FORWARD")
