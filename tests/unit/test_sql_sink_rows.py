"""From event to row, without a database: field paths, value types, refusals naming columns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sinks.sql import EventMapping, MappingAction, RejectedEventError
from adapters.sinks.sql.fields import PathError, ValueKind, read, resolve
from adapters.sinks.sql.rows import plan_change
from adapters.sinks.sql.tables import SinkTables, processed_table
from bus.contract.envelope import DataClassification, Envelope
from bus.contract.events import (
    IzinDiterbitkan,
    Lokasi,
    PajakDaerahDibayar,
    PendudukUpdated,
    SpbeEvent,
)
from bus.contract.standard import example
from bus.delivery import Delivery
from tests.support.events import izin, penduduk


@pytest.mark.parametrize(
    ("model", "path", "kind", "required"),
    [
        (PendudukUpdated, "nik", ValueKind.TEXT, True),
        (PendudukUpdated, "tanggal_lahir", ValueKind.DATE, True),
        (PendudukUpdated, "jenis_kelamin", ValueKind.TEXT, True),
        (PendudukUpdated, "pendidikan_terakhir", ValueKind.TEXT, False),
        (PendudukUpdated, "alamat.kode_wilayah", ValueKind.TEXT, True),
        (PendudukUpdated, "alamat.kode_pos", ValueKind.TEXT, False),
        (PajakDaerahDibayar, "pokok", ValueKind.DECIMAL, True),
        (PajakDaerahDibayar, "waktu_bayar", ValueKind.DATETIME, True),
        (PajakDaerahDibayar, "tahun_pajak", ValueKind.INTEGER, True),
        (PajakDaerahDibayar, "objek.nop", ValueKind.TEXT, False),
        (IzinDiterbitkan, "lokasi.lat", ValueKind.FLOAT, False),
        (IzinDiterbitkan, "kbli.versi", ValueKind.TEXT, True),
    ],
)
def test_a_path_resolves_to_the_kind_of_value_it_holds_and_whether_it_is_always_set(
    model: type[SpbeEvent], path: str, kind: ValueKind, required: bool
) -> None:
    resolved = resolve(model, path)
    assert (resolved.kind, resolved.required) == (kind, required)


def test_a_path_into_a_record_reads_the_nested_value_and_none_past_an_absent_record() -> None:
    assert read(izin(3), "lokasi.kode_wilayah") == "32.73.02.1003"
    assert read(izin(3), "kbli.kode") == "56102"

    class Outer(Lokasi):
        inner: Lokasi | None = None

    outer = Outer(kode_wilayah="32.73.02.1003", alamat="Jl. Dago")
    assert read(outer, "inner.alamat") is None
    assert resolve(Outer, "inner.alamat").required is False


def test_a_path_naming_no_field_lists_the_fields_that_exist() -> None:
    with pytest.raises(PathError) as caught:
        resolve(IzinDiterbitkan, "lokasi.desa")
    assert caught.value.problem == "'lokasi.desa' is not a field of IzinDiterbitkan record lokasi"
    assert caught.value.fix == (
        "use one of: lokasi.kode_wilayah, lokasi.alamat, lokasi.lat, lokasi.lon"
    )


# -- fitting values to columns ---------------------------------------------------------------


def deliver(event: SpbeEvent, sequence: int | None = 1) -> Delivery:
    envelope = Envelope(
        source="ID/PEMDA-3273/BAPENDA/simpatda",
        type=f"{event.avro_name}.v1",
        steward="BAPENDA",
        partitionkey="kunci",
        dataclassification=DataClassification.INTERNAL,
        sequence=sequence,
    )
    return Delivery(
        event=event,
        envelope=envelope,
        topic="spbe.bapenda.pajak.v1",
        partition=0,
        offset=0,
        key=b"kunci",
        attempt=1,
    )


def tables(
    *columns: sa.Column[Any], key_type: sa.types.TypeEngine[Any] | None = None
) -> SinkTables:
    metadata = sa.MetaData()
    target = sa.Table(
        "target",
        metadata,
        sa.Column("kunci", key_type or sa.String(64), primary_key=True),
        sa.Column("spbe_sequence", sa.BigInteger()),
        *columns,
    )
    return SinkTables(
        target=target,
        processed=processed_table("spbe_processed_events", metadata),
        key=target.c.kunci,
        version=target.c.spbe_sequence,
    )


def test_codes_instants_money_and_dates_are_fitted_to_their_columns() -> None:
    event = PajakDaerahDibayar.from_json(example("PajakDaerahDibayar"))
    mapping = EventMapping(
        key="ntpd",
        columns={
            "jenis": "jenis_pajak",
            "bayar_utc": "waktu_bayar",
            "bayar_lokal": "waktu_bayar",
            "bayar_teks": "waktu_bayar",
            "total": "total",
            "tahun": "tahun_pajak",
        },
        set={"dicatat": date(2026, 12, 1)},
    )
    change = plan_change(
        4,
        deliver(event),
        mapping,
        tables(
            sa.Column("jenis", sa.String(32)),
            sa.Column("bayar_utc", sa.DateTime(timezone=True)),
            sa.Column("bayar_lokal", sa.DateTime()),
            sa.Column("bayar_teks", sa.String(40)),
            sa.Column("total", sa.Numeric(18, 2)),
            sa.Column("tahun", sa.Integer()),
            sa.Column("dicatat", sa.String(10)),
        ),
    )
    assert change.index == 4
    assert change.key == "32730126112800001547"
    assert change.action is MappingAction.UPSERT
    assert change.values == {
        "jenis": "PBB_P2",
        "bayar_utc": datetime(2026, 11, 28, 3, 15, tzinfo=UTC),
        "bayar_lokal": datetime(2026, 11, 28, 3, 15),
        "bayar_teks": "2026-11-28T03:15:00+00:00",
        "total": Decimal("1275000.00"),
        "tahun": 2026,
        "dicatat": "2026-12-01",
    }


def test_a_text_too_long_for_its_column_is_refused_naming_field_and_column_not_value() -> None:
    event = penduduk(7)
    mapping = EventMapping(key="nik", columns={"nama": "nama_lengkap"})
    with pytest.raises(RejectedEventError) as caught:
        plan_change(2, deliver(event), mapping, tables(sa.Column("nama", sa.String(12))))
    error = caught.value
    assert (error.index, error.column, error.retriable) == (2, "nama", False)
    assert (
        "field nama_lengkap is 24 characters long in this event, and column nama holds at most 12"
        in str(error)
    )
    assert event.nik not in str(error)
    assert event.nama_lengkap not in str(error)
    assert "fix: widen the column (e.g. to varchar(255))" in str(error)


def test_an_amount_with_more_whole_digits_than_the_column_holds_is_refused() -> None:
    event = PajakDaerahDibayar.from_json(example("PajakDaerahDibayar"))
    mapping = EventMapping(key="ntpd", columns={"total": "total"})
    with pytest.raises(
        RejectedEventError, match=r"column total \(numeric\(8,2\)\) holds at most 6"
    ):
        plan_change(0, deliver(event), mapping, tables(sa.Column("total", sa.Numeric(8, 2))))


def test_an_empty_field_for_a_not_null_column_is_refused_and_a_nullable_one_gets_null() -> None:
    event = PajakDaerahDibayar.from_json(example("PajakDaerahDibayar"))
    mapping = EventMapping(key="ntpd", columns={"masa": "masa_pajak"})
    nullable = plan_change(0, deliver(event), mapping, tables(sa.Column("masa", sa.Integer())))
    assert nullable.values == {"masa": None}
    with pytest.raises(RejectedEventError, match="field masa_pajak is empty in this event"):
        plan_change(
            0, deliver(event), mapping, tables(sa.Column("masa", sa.Integer(), nullable=False))
        )


def test_an_update_only_mapping_carries_its_constants_and_the_events_sequence() -> None:
    mapping = EventMapping(
        key="nomor_izin", action=MappingAction.UPDATE_ONLY, set={"status": "DICABUT"}
    )
    change = plan_change(
        0, deliver(izin(9), sequence=12), mapping, tables(sa.Column("status", sa.String(16)))
    )
    assert change.action is MappingAction.UPDATE_ONLY
    assert change.values == {"status": "DICABUT"}
    assert change.sequence == 12
    assert change.event_name == "IzinDiterbitkan"
    assert change.dedupe_key == ("ID/PEMDA-3273/BAPENDA/simpatda", change.delivery.envelope.id)
