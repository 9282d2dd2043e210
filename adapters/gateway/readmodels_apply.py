"""How a projected event changes a read-model row: one transaction per batch, a version guard.

A row has parts: a resident's ``document`` (PendudukUpdated) and ``kematian``
(KematianDicatat), which share the resident's version (Disdukcapil's ``versi``); a
payment's ``document``. An event writes its part when the part is empty, or when its
``sequence`` is above the row's (or either has none: then the last writer wins). The
row's ``sequence`` only ever rises. An event whose ``ce_id`` is the row's last, or whose
sequence equals the row's, is a duplicate; a lower sequence is stale. Neither changes
anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.gateway.readmodels_tables import ReadModelTables
from bus.errors import PermanentError, TransientError

__all__ = ["Part", "RowChange", "Verdict", "apply_changes"]


class Part(StrEnum):
    """Which part of which table an event writes."""

    PERSON = "document"  # spbe_gateway_penduduk.document
    DEATH = "kematian"  # spbe_gateway_penduduk.kematian
    PAYMENT = "payment"  # spbe_gateway_pajak.document


class Verdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class RowChange:
    """What one delivery writes: ``key`` is the NIK or NTPD, ``ref`` kode wilayah or NOP."""

    part: Part
    subscriber: str
    key: str
    document: dict[str, Any]
    ref: str | None
    event_id: str
    event_type: str
    sequence: int | None


def apply_changes(
    engine: Engine, tables: ReadModelTables, changes: Sequence[RowChange], now: datetime
) -> list[Verdict]:
    """Apply ``changes`` in order, in one transaction; one verdict per change.

    Database failures become :class:`~bus.errors.TransientError` (a connection, a lock, a
    row inserted meanwhile: the same events apply on a retry) or
    :class:`~bus.errors.PermanentError` (a value the column cannot hold); nothing of the
    batch is committed then. No SQL parameter (a NIK) is in either message.
    """
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # The write lock at once: the row read below cannot change before the write.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            return [_apply(conn, tables, change, now) for change in changes]
    except sa.exc.DBAPIError as exc:
        raise _failure(exc) from None


def _failure(exc: sa.exc.DBAPIError) -> Exception:
    kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    if isinstance(exc, sa.exc.DataError):
        return PermanentError(
            f"a projected value does not fit the gateway's read-model columns ({kind})",
            fix="check that the projected event follows the data standard (schemas/avro)",
        )
    return TransientError(
        f"the read-model database did not apply the batch ({kind})",
        fix="check the gateway's database; the events apply again when it answers",
    )


def _apply(conn: Connection, tables: ReadModelTables, change: RowChange, now: datetime) -> Verdict:
    payment = change.part is Part.PAYMENT
    table = tables.pajak if payment else tables.penduduk
    key_column = table.c.ntpd if payment else table.c.nik
    ref_name = "nop" if payment else "kode_wilayah"
    column = "document" if payment else change.part.value
    where = (table.c.subscriber == change.subscriber, key_column == change.key)
    query = sa.select(table).where(*where)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    stamp: dict[str, Any] = {"event_id": change.event_id, "updated_at": now}
    if not payment:
        stamp["event_type"] = change.event_type
    values: dict[str, Any] = {column: change.document, **stamp}
    if change.part is not Part.DEATH:
        values[ref_name] = change.ref
    if row is None:
        conn.execute(
            sa.insert(table).values(
                subscriber=change.subscriber,
                **{key_column.name: change.key},
                sequence=change.sequence,
                **values,
            )
        )
        return Verdict.APPLIED
    verdict = _judge(row, column, change)
    if verdict is not Verdict.APPLIED:
        return verdict
    values["sequence"] = _higher(row.sequence, change.sequence)
    conn.execute(sa.update(table).where(*where).values(**values))
    return Verdict.APPLIED


def _judge(row: sa.Row[Any], column: str, change: RowChange) -> Verdict:
    if row.event_id == change.event_id:
        return Verdict.DUPLICATE
    if getattr(row, column) is None:
        return Verdict.APPLIED  # an empty part is filled whatever the versions
    held, new = row.sequence, change.sequence
    if held is None or new is None or new > held:
        return Verdict.APPLIED
    return Verdict.DUPLICATE if new == held else Verdict.STALE


def _higher(held: int | None, new: int | None) -> int | None:
    if held is None or new is None:
        return new if held is None else held
    return max(held, new)
