"""add_to_outbox: the event and the business row commit together, validated, as plain JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db import create_engine
from adapters.sources.outbox import add_to_outbox, create_outbox_table, outbox_table
from adapters.sources.outbox.rows import RowRejected
from bus.contract.envelope import UUID7_PATTERN
from bus.contract.events import IzinDiterbitkan
from bus.contract.standard import example
from bus.errors import ContractError, EventValidationError
from tests.support.events import izin, penduduk

OUTBOX = outbox_table()
IZIN = sa.Table(
    "izin_usaha", sa.MetaData(), sa.Column("nomor_izin", sa.String(100), primary_key=True)
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    IZIN.metadata.create_all(engine)
    create_outbox_table(engine)
    yield engine
    engine.dispose()


def stored(engine: sa.Engine) -> list[sa.Row[object]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id)))


def test_the_event_is_stored_as_its_plain_json_with_a_new_uuidv7(engine: sa.Engine) -> None:
    person = penduduk(12)
    with engine.begin() as conn:
        event_id = add_to_outbox(conn, person, aggregate_id=person.nik, sequence=4)
    (row,) = stored(engine)
    assert UUID7_PATTERN.fullmatch(event_id)
    assert row.event_id == event_id
    assert row.event_type == "PendudukUpdated"
    assert row.aggregate_id == person.nik
    assert row.sequence == 4
    assert json.loads(row.payload) == person.to_json()
    assert row.published_at is None
    assert row.attempts == 0
    assert row.created_at is not None


def test_the_event_rolls_back_with_the_business_row(engine: sa.Engine) -> None:
    permit = izin(1)

    def failing() -> None:
        with engine.begin() as conn:
            conn.execute(IZIN.insert().values(nomor_izin=permit.nomor_izin))
            add_to_outbox(conn, permit, aggregate_id=permit.nomor_izin)
            raise RuntimeError("the application fails before commit")

    with pytest.raises(RuntimeError):
        failing()
    assert stored(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(IZIN)).scalar_one() == 0


def test_a_given_uuidv7_is_kept_and_lowercased(engine: sa.Engine) -> None:
    permit = izin(2)
    with engine.begin() as conn:
        event_id = add_to_outbox(
            conn,
            permit,
            aggregate_id=permit.nomor_izin,
            event_id="019B7CC6-4C00-7A3E-9B1D-5F2E8C4D7A10",
        )
    assert event_id == "019b7cc6-4c00-7a3e-9b1d-5f2e8c4d7a10"
    assert stored(engine)[0].event_id == event_id


def test_an_event_id_that_is_not_a_uuidv7_is_refused_before_anything_is_written(
    engine: sa.Engine,
) -> None:
    permit = izin(3)
    with pytest.raises(RowRejected, match="UUIDv7"), engine.begin() as conn:
        add_to_outbox(
            conn,
            permit,
            aggregate_id=permit.nomor_izin,
            event_id="1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        )
    assert stored(engine) == []


def test_an_event_built_without_validation_is_refused_naming_its_fields(
    engine: sa.Engine,
) -> None:
    permit = izin(6)
    unchecked = permit.model_copy(update={"nib": "12AB"})  # model_copy does not validate
    with pytest.raises(EventValidationError, match="nib"), engine.begin() as conn:
        add_to_outbox(conn, unchecked, aggregate_id=permit.nomor_izin)
    assert stored(engine) == []


def test_an_event_whose_values_cannot_be_json_is_refused_with_the_fix(engine: sa.Engine) -> None:
    data = example("IzinDiterbitkan")
    raw = IzinDiterbitkan.model_construct(**data)  # dates left as strings
    with pytest.raises(ContractError, match="from_json"), engine.begin() as conn:
        add_to_outbox(conn, raw, aggregate_id=data["nomor_izin"])


@pytest.mark.parametrize(
    ("aggregate_id", "sequence", "message"),
    [("", None, "aggregate_id"), ("x" * 256, None, "aggregate_id"), ("A-1", -1, "sequence")],
)
def test_an_empty_aggregate_id_or_a_negative_sequence_is_refused(
    engine: sa.Engine, aggregate_id: str, sequence: int | None, message: str
) -> None:
    with pytest.raises(ContractError, match=message), engine.begin() as conn:
        add_to_outbox(conn, izin(4), aggregate_id=aggregate_id, sequence=sequence)


def test_a_table_with_another_name_can_be_written(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    create_outbox_table(engine, table="dpmptsp_outbox")
    permit = izin(5)
    with engine.begin() as conn:
        add_to_outbox(conn, permit, aggregate_id=permit.nomor_izin, table="dpmptsp_outbox")
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM dpmptsp_outbox")).scalar_one()
    engine.dispose()
    assert count == 1
