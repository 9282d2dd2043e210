"""SQL sink config: a mapping mistake is refused at load, naming its key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.sinks.sql import (
    DEFAULT_PROCESSED_TABLE,
    DEFAULT_VERSION_COLUMN,
    EventMapping,
    MappingAction,
    SqlSinkConfig,
)
from adapters.sinks.sql.config import column_kinds, key_kind
from adapters.sinks.sql.fields import ValueKind
from bus.errors import ConfigError

GOOD_YAML = """\
database_url: ${SPBE_TEST_SINK_DB:-sqlite:///dinsos.db}
table: penduduk
key_column: nik
events:
  PendudukUpdated:
    key: nik
    columns:
      nama_lengkap: nama_lengkap
      kode_wilayah: alamat.kode_wilayah
  KematianDicatat:
    key: nik
    action: update_only
    columns: {tanggal_meninggal: tanggal_meninggal}
    set: {status: MENINGGAL}
"""


def settings(**events: Any) -> dict[str, Any]:
    return {
        "database_url": "sqlite:///x.db",
        "table": "penduduk",
        "key_column": "nik",
        "events": events or {"PendudukUpdated": {"key": "nik"}},
    }


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        SqlSinkConfig.model_validate(data)
    return str(caught.value)


def test_a_config_file_loads_with_defaults_and_keeps_the_database_url_out_of_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPBE_TEST_SINK_DB", "postgresql+psycopg://dinsos:rahasia@db/dinsos")
    path = tmp_path / "sink.yaml"
    path.write_text(GOOD_YAML)
    config = SqlSinkConfig.from_file(path)
    assert config.database_url.get_secret_value().endswith("@db/dinsos")
    assert "rahasia" not in repr(config)
    assert config.version_column == DEFAULT_VERSION_COLUMN == "spbe_sequence"
    assert config.processed_table == DEFAULT_PROCESSED_TABLE == "spbe_processed_events"
    assert config.create_tables is False
    death = config.events["KematianDicatat"]
    assert death.action is MappingAction.UPDATE_ONLY
    assert death.set_ == {"status": "MENINGGAL"}
    assert config.events["PendudukUpdated"].action is MappingAction.UPSERT


def test_the_kinds_of_the_key_and_every_column_come_from_the_event_models() -> None:
    config = SqlSinkConfig.model_validate(
        settings(
            PendudukUpdated={
                "key": "nik",
                "columns": {"lahir": "tanggal_lahir", "kelamin": "jenis_kelamin"},
                "set": {"aktif": True, "catatan": None},
            }
        )
    )
    assert key_kind(config) is ValueKind.TEXT
    assert column_kinds(config) == {
        "lahir": ValueKind.DATE,
        "kelamin": ValueKind.TEXT,
        "aktif": ValueKind.BOOLEAN,
        "catatan": None,
    }


def test_every_mapping_mistake_in_a_file_is_listed_with_its_key_and_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "sink.yaml"
    path.write_text(
        GOOD_YAML.replace("PendudukUpdated:", "PendudukUpdate:")
        .replace("tanggal_meninggal: tanggal_meninggal", "tanggal_meninggal: tanggal_mati")
        .replace("status: MENINGGAL", "spbe_sequence: 1")
    )
    with pytest.raises(ConfigError) as caught:
        SqlSinkConfig.from_file(path)
    message = str(caught.value)
    assert "has 3 problems" in message
    assert (
        "events.PendudukUpdate: is not a known event type; fix: did you mean 'PendudukUpdated'?"
        in message
    )
    assert (
        "events.KematianDicatat.columns.tanggal_meninggal: 'tanggal_mati' is not a field of "
        "KematianDicatat; fix: did you mean 'tanggal_meninggal'?" in message
    )
    assert (
        "events.KematianDicatat.set.spbe_sequence: is the version_column; the sink writes it "
        "from the event's sequence; fix:" in message
    )


def test_a_misspelt_key_inside_an_event_mapping_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "sink.yaml"
    path.write_text(GOOD_YAML.replace("    columns:\n      nama", "    colums:\n      nama"))
    with pytest.raises(ConfigError, match=r"events\.PendudukUpdated\.colums: unknown key; fix: "):
        SqlSinkConfig.from_file(path)
    with pytest.raises(ConfigError, match="did you mean 'columns'"):
        SqlSinkConfig.from_file(path)


@pytest.mark.parametrize(
    ("mapping", "key", "expected"),
    [
        (
            {"key": "nik", "columns": {"kode": "alamat.kode_wilayahh"}},
            "events.PendudukUpdated.columns.kode",
            "did you mean 'alamat.kode_wilayah'?",
        ),
        (
            {"key": "nik", "columns": {"alamat": "alamat"}},
            "events.PendudukUpdated.columns.alamat",
            "'alamat' is a record, not a single value; fix: map one of its fields: alamat.jalan",
        ),
        (
            {"key": "nik", "columns": {"ubah": "changed_fields"}},
            "events.PendudukUpdated.columns.ubah",
            "'changed_fields' is a list or another value a column cannot hold",
        ),
        (
            {"key": "nik", "columns": {"x": "nik.digit"}},
            "events.PendudukUpdated.columns.x",
            "'nik' is a single value and has no field 'digit'",
        ),
        (
            {"key": "nikk"},
            "events.PendudukUpdated.key",
            "'nikk' is not a field of PendudukUpdated; fix: did you mean 'nik'?",
        ),
        (
            {"key": "nik", "columns": {"nik": "nik"}},
            "events.PendudukUpdated.columns.nik",
            "is the key_column; the sink writes it from events.PendudukUpdated.key",
        ),
        (
            {"key": "nik", "columns": {"status": "pekerjaan"}, "set": {"status": "HIDUP"}},
            "events.PendudukUpdated.set.status",
            "is mapped under columns too; fix: keep one of the two",
        ),
        (
            {"key": "nik", "action": "update_only"},
            "events.PendudukUpdated.action",
            "update_only with no columns and no set changes nothing; fix: add columns or set",
        ),
        (
            {"key": "nik", "action": "hapus"},
            "events.PendudukUpdated.action",
            "Input should be 'upsert' or 'update_only'",
        ),
        (
            {"key": "nik", "columns": {"Nama": "nama_lengkap"}},
            "events.PendudukUpdated.columns.Nama",
            "'Nama' is not a usable SQL name; fix: use lowercase letters",
        ),
        (
            {"key": "nik", "columns": {"nama": "nama lengkap"}},
            "events.PendudukUpdated.columns.nama",
            "'nama lengkap' is not a field path",
        ),
    ],
)
def test_a_wrong_field_path_or_column_names_its_key_and_the_fix(
    mapping: dict[str, Any], key: str, expected: str
) -> None:
    message = problems(settings(PendudukUpdated=mapping))
    assert key in message
    assert expected in message


def test_a_key_that_some_events_lack_is_refused() -> None:
    message = problems(settings(UmkmTerdaftar={"key": "nib"}))
    assert "events.UmkmTerdaftar.key" in message
    assert "'nib' may be empty in a UmkmTerdaftar event, and every row needs a key" in message


def test_one_column_fed_values_of_two_kinds_is_refused() -> None:
    message = problems(
        settings(
            PendudukUpdated={"key": "nik", "columns": {"tanggal": "tanggal_lahir"}},
            KematianDicatat={"key": "nik", "set": {"tanggal": "kemarin"}},
        )
    )
    assert "events.KematianDicatat.set.tanggal" in message
    assert "gives column tanggal a text value, and events.PendudukUpdated.columns.tanggal" in (
        message
    )


def test_keys_of_different_kinds_across_event_types_are_refused() -> None:
    message = problems(
        settings(
            PendudukUpdated={"key": "nik"},
            PajakDaerahDibayar={"key": "tahun_pajak"},
        )
    )
    assert "the keys differ in kind" in message
    assert "events.PajakDaerahDibayar.key holds integer" in message


def test_table_level_settings_that_collide_are_refused() -> None:
    data = settings() | {"version_column": "nik", "processed_table": "penduduk"}
    message = problems(data)
    assert "version_column\n  is the key_column too" in message
    assert "processed_table\n  is the target table too" in message


def test_names_that_are_not_plain_sql_identifiers_are_refused() -> None:
    assert "'penduduk; DROP TABLE x' is not a usable table name" in problems(
        settings() | {"table": "penduduk; DROP TABLE x"}
    )
    assert "'NIK' is not a usable SQL name" in problems(settings() | {"key_column": "NIK"})
    config = SqlSinkConfig.model_validate(settings() | {"table": "dinsos.penduduk"})
    assert config.table == "dinsos.penduduk"


def test_a_mapping_needs_at_least_one_event_and_refuses_unknown_settings() -> None:
    assert "events\n  Dictionary should have at least 1 item" in problems(
        settings() | {"events": {}}
    )
    assert "tabel\n  Extra inputs are not permitted" in problems(settings() | {"tabel": "x"})


def test_event_mappings_can_be_built_in_code_with_set_by_its_name() -> None:
    mapping = EventMapping(key="nik", action=MappingAction.UPDATE_ONLY, set={"status": "MENINGGAL"})
    config = SqlSinkConfig(
        database_url="sqlite:///x.db",  # type: ignore[arg-type]
        table="penduduk",
        key_column="nik",
        events={"KematianDicatat": mapping},
    )
    assert config.events["KematianDicatat"].set_ == {"status": "MENINGGAL"}
