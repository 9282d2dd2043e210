"""Dead letters' pure parts: masking personal data, selecting, how far a purge may go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bus.contract.codec import InMemorySchemas
from bus.contract.message import IncomingEvent, build_record, read_record
from bus.contract.standard import load_standard
from bus.delivery import DeadLetterCause, dead_letter_headers
from bus.errors import ConfigError
from bus.ops.dlq_records import (
    MASK,
    DeadLetter,
    describe,
    error_class_matches,
    mask_paths,
    mask_text,
    purgeable_to,
    select,
)
from tests.support.events import SOURCE_DUKCAPIL, penduduk

SECRET = b"dukcapil-test-secret-0123456789"
TOPIC = "spbe.dukcapil.penduduk.v1"


def dead_letter(offset: int = 0, *, error: Exception | None = None) -> DeadLetter:
    standard = load_standard()
    record = build_record(
        penduduk(1), standard["PendudukUpdated"], source=SOURCE_DUKCAPIL, key_secret=SECRET
    )
    cause = DeadLetterCause.of(
        error or RuntimeError("kolom nama_lengkap terlalu pendek untuk 'Siti Nurhaliza Rahmawati'"),
        attempts=3,
        first_failure=datetime(2026, 3, 1, tzinfo=UTC),
        topic=TOPIC,
        partition=2,
        offset=41,
        subscriber="dinsos-penduduk",
    )
    return DeadLetter(
        topic=f"{TOPIC}.dlq.dinsos-penduduk",
        partition=0,
        offset=offset,
        timestamp=datetime(2026, 3, 1, 0, 5, tzinfo=UTC),
        key=record.key,
        value=record.value,
        headers=tuple(dead_letter_headers(record.headers, cause)),
    )


def decoded(letter: DeadLetter) -> IncomingEvent:
    standard = load_standard()
    assert letter.value is not None
    return read_record(
        letter.value, letter.original_headers, InMemorySchemas(standard.values()), standard
    )


def test_masking_replaces_nested_personal_fields_and_leaves_the_rest() -> None:
    data = {"nik": "1", "alamat": {"jalan": "Jl. X", "kode_pos": None}, "pekerjaan_x": "a"}
    masked = mask_paths(data, ["nik", "alamat.jalan", "alamat.kode_pos", "absent.field"])
    assert masked == {"nik": MASK, "alamat": {"jalan": MASK, "kode_pos": None}, "pekerjaan_x": "a"}
    assert data["nik"] == "1", "the original is not changed"


def test_masking_steps_into_list_items_and_map_values() -> None:
    data = {"anggota": [{"nik": "1"}, {"nik": "2"}], "wali": {"ibu": {"nama": "A"}}}
    masked = mask_paths(data, ["anggota[].nik", "wali{}.nama"])
    assert masked == {"anggota": [{"nik": MASK}, {"nik": MASK}], "wali": {"ibu": {"nama": MASK}}}


def test_messages_lose_personal_values_and_every_long_digit_run() -> None:
    text = "baris 3273025708900001 untuk Siti Nurhaliza ditolak, kode 123"
    assert mask_text(text, ["Siti Nurhaliza"]) == f"baris {MASK} untuk {MASK} ditolak, kode 123"


def test_a_dead_letter_that_decodes_shows_its_event_with_every_pii_field_masked() -> None:
    letter = dead_letter()
    view = describe(letter, decoded(letter))
    event = view["event"]
    resident = penduduk(1)
    assert event["nik"] == MASK
    assert event["nama_lengkap"] == MASK
    assert event["alamat"]["jalan"] == MASK
    assert event["changed_fields"] == ["alamat", "status_perkawinan"]
    text = repr(view)
    for secret in (resident.nik, resident.nama_lengkap, resident.no_kk, "Cisitu"):
        assert secret not in text
    assert view["original"] == {"topic": TOPIC, "partition": 2, "offset": 41}
    assert view["error_class"] == "builtins.RuntimeError"
    assert view["attempts"] == 3
    assert view["event_type"] == "id.go.spbe.dukcapil.PendudukUpdated.v1"
    assert f"'{MASK}'" in view["error_message"]


def test_show_adds_the_envelope_headers_without_the_cause_headers() -> None:
    letter = dead_letter()
    view = describe(letter, decoded(letter), full=True)
    assert view["headers"]["ce_source"] == SOURCE_DUKCAPIL
    assert not any(name.startswith("dlq_") for name in view["headers"])


def test_an_undecodable_dead_letter_shows_its_size_never_its_bytes() -> None:
    letter = dead_letter()
    view = describe(letter, None, problem="CodecError: not Avro")
    assert "event" not in view
    assert "bytes, not shown" in view["undecodable"]


def test_redrive_selects_by_offset_range_and_by_full_or_short_error_class() -> None:
    letters = [
        dead_letter(0, error=ValueError("x")),
        dead_letter(1, error=RuntimeError("y")),
        dead_letter(2, error=ValueError("z")),
    ]
    assert [x.offset for x in select(letters, from_offset=1)] == [1, 2]
    assert [x.offset for x in select(letters, to_offset=1)] == [0, 1]
    assert [x.offset for x in select(letters, error_class="ValueError")] == [0, 2]
    assert [x.offset for x in select(letters, error_class="builtins.RuntimeError")] == [1]
    with pytest.raises(ConfigError, match="before --from-offset"):
        select(letters, from_offset=2, to_offset=1)


def test_error_classes_match_only_whole_names() -> None:
    rejected = "adapters.sinks.sql.failures.RejectedEventError"
    assert error_class_matches(rejected, "RejectedEventError")
    assert not error_class_matches(rejected, "EventError")


def test_a_purge_may_reach_only_as_far_as_every_earlier_dead_letter_is_resolved() -> None:
    assert purgeable_to([3, 4, 5, 6], {3, 4, 6}) == 4
    assert purgeable_to([3, 4, 5], {3, 4, 5}) == 5
    assert purgeable_to([3, 4, 5], {4, 5}) is None
    assert purgeable_to([], set()) is None
