"""Audit records: who acted (from $SPBE_PRINCIPAL or the OS user), and a lossless JSON form."""

from __future__ import annotations

import json

import pytest

from bus.ops.audit import AUDIT_TOPIC, AUDIT_TOPIC_CONFIGS, AuditRecord, new_record


def test_the_principal_comes_from_spbe_principal_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPBE_PRINCIPAL", "operator.diskominfo@3273")
    entry = new_record("dlq.purge", subscriber="dinsos-penduduk", topics=["t"], reason="r")
    assert entry.principal == "operator.diskominfo@3273"


def test_without_spbe_principal_the_os_user_acts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPBE_PRINCIPAL", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "budi")
    assert new_record("replay.rewind", subscriber="s", topics=[]).principal == "budi"


def test_a_record_round_trips_through_its_json_bytes() -> None:
    entry = new_record(
        "replay.reapply",
        subscriber="dinsos-penduduk",
        topics=["spbe.dukcapil.penduduk.v1"],
        parameters={"from_time": "2026-03-01T00:00:00+07:00", "keys": ["pseudonym"]},
        reason="restore DB, tiket #123",
        result={"applied": 10, "duplicates": 2},
        principal="ops",
    )
    data = json.loads(entry.to_bytes())
    assert set(data) == {
        "id", "at", "principal", "action", "subscriber", "topics", "parameters", "reason",
        "result",
    }  # fmt: skip
    assert AuditRecord.from_bytes(entry.to_bytes()) == entry


def test_the_audit_topic_is_kept_forever_and_never_compacted() -> None:
    assert AUDIT_TOPIC == "_spbe.audit"
    assert AUDIT_TOPIC_CONFIGS["cleanup.policy"] == "delete"
    assert AUDIT_TOPIC_CONFIGS["retention.ms"] == "-1"
