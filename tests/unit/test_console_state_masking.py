"""What the console's page data shows of free text and dead letters: nothing personal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from adapters.console import AdapterHealth, audit_view, console_state
from bus.ops.audit import new_record
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.dlq_records import MASK
from bus.ops.status import StatusReport

PHONE = "081234567890"
NAME = "Siti Aminah"


def test_an_audit_reason_loses_a_phone_number_and_a_quoted_name() -> None:
    record = new_record(
        "dlq.redrive",
        subscriber="dinsos-penduduk",
        topics=["spbe.dukcapil.penduduk.v1.for.dinsos-penduduk"],
        reason=f"hubungi {PHONE} '{NAME}'",
        result={"outcome": f"ditolak untuk '{NAME}', hp {PHONE}", "applied": 0},
        principal="ops",
    )
    view = audit_view(record)
    assert view["reason"] == f"hubungi {MASK} '{MASK}'"
    assert view["outcome"] == f"outcome: ditolak untuk '{MASK}', hp {MASK}, applied: 0"
    assert view["topics"] == ["spbe.dukcapil.penduduk.v1.for.dinsos-penduduk"]


def test_every_free_text_of_the_state_is_masked_as_spbe_bus_logs_masks_it() -> None:
    catalog, _ = load_catalog(default_catalog_path())
    record = new_record("replay", subscriber="dinsos-penduduk", topics=["t"], reason=PHONE)
    health = AdapterHealth(
        "dinsos-penduduk-sink",
        False,
        f"HTTP 500: duplicate '{NAME}' [parameters: ('{NAME}',)]",
        datetime(2026, 12, 2, tzinfo=UTC),
    )
    state = console_state(
        StatusReport((), taken_at=datetime(2026, 12, 2, tzinfo=UTC)),
        catalog,
        today=date(2026, 12, 2),
        max_lag=1,
        dead_letters={},
        adapters=[health],
        audit=[record],
    )
    text = json.dumps(state, ensure_ascii=False)
    assert PHONE not in text
    assert NAME not in text
    assert (
        state["adapters"][0]["detail"]
        == f"HTTP 500: duplicate '{MASK}' [SQL and parameters dropped]"
    )
