"""What the console's page data shows of free text and dead letters: nothing personal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from adapters.console import AdapterHealth, audit_view, console_state
from bus.contract.message import build_record
from bus.contract.standard import load_standard
from bus.delivery import DeadLetterCause, dead_letter_headers
from bus.ops.audit import new_record
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.dlq_records import MASK, DeadLetter, describe
from bus.ops.status import DeadLetters, PartitionStatus, StatusReport, SubscriberStatus
from tests.support.events import SOURCE_DPMPTSP, izin
from tests.unit.test_dlq_masking import decoded

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


def _izin_dead_letter(topic: str, nama_usaha: str) -> DeadLetter:
    standard = load_standard()
    record = build_record(
        izin(7, nama_usaha=nama_usaha),
        standard["IzinDiterbitkan"],
        source=SOURCE_DPMPTSP,
        key_secret=b"k" * 32,
    )
    cause = DeadLetterCause.of(
        RuntimeError("kolom kbli 56102 tidak dikenal"),
        attempts=3,
        first_failure=datetime(2026, 12, 1, tzinfo=UTC),
        topic=topic,
        partition=0,
        offset=7,
        subscriber="bapenda-izin",
    )
    return DeadLetter(
        topic=f"{topic}.dlq.bapenda-izin",
        partition=0,
        offset=0,
        timestamp=datetime(2026, 12, 1, 0, 5, tzinfo=UTC),
        key=record.key,
        value=record.value,
        headers=tuple(dead_letter_headers(record.headers, cause)),
    )


def test_a_dead_letters_event_shows_its_field_names_and_no_value() -> None:
    topic = "spbe.dpmptsp.izin.v1.for.bapenda-izin"
    letter = _izin_dead_letter(topic, nama_usaha="Warung Bu Siti Aminah")
    view = describe(letter, decoded(letter))
    terminal = view["event"]  # what spbe-bus dlq show prints: only spbe.pii fields masked
    assert terminal["lokasi"]["alamat"].startswith("Jl. Cisitu Lama No. 45")
    assert terminal["nama_usaha"] == "Warung Bu Siti Aminah"

    catalog, _ = load_catalog(default_catalog_path())
    status = SubscriberStatus(
        subscriber="bapenda-izin",
        topics=(topic,),
        partitions=(PartitionStatus(topic, 0, 7, 0, 8, None),),
        dead_letters=(DeadLetters(f"{topic}.dlq.bapenda-izin", 1),),
    )
    state = console_state(
        StatusReport((status,), taken_at=datetime(2026, 12, 2, tzinfo=UTC)),
        catalog,
        today=date(2026, 12, 2),
        max_lag=1000,
        dead_letters={"bapenda-izin": [view]},
        adapters=[],
        audit=[],
    )
    (subscription,) = state["subscriptions"]
    (sample,) = subscription["dead_letter_samples"]
    event = sample["event"]
    assert set(event) == set(terminal), "every field is named"
    assert event["lokasi"] == {"kode_wilayah": MASK, "alamat": MASK, "lat": MASK, "lon": MASK}
    assert event["nama_usaha"] == MASK
    assert event["kbli"] == {"kode": MASK, "versi": MASK}
    assert event["berlaku_sampai"] is None, "an empty field is seen as empty"
    text = json.dumps(state, ensure_ascii=False)
    for value in ("Cisitu", "Siti", "-6.8779", "107.6122", "503/0007"):
        assert value not in text, value
    assert sample["event_type"] == "id.go.spbe.dpmptsp.IzinDiterbitkan.v1"
    assert sample["error_message"] == "kolom kbli 56102 tidak dikenal"
