"""``spbe-bus logs``: JSON log lines grouped by cause, counted, dated, and never personal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bus.cli.main import main
from bus.errors import ConfigError
from bus.ops.dlq_records import mask_message
from bus.ops.log_groups import group_logs
from tests.support.ports import free_port_block

ROOT = Path(__file__).resolve().parents[2]
NIK = "3273025708900001"
NAME = "Siti Aminah"


def line(
    event: str, level: str = "warning", at: str = "2026-12-01T08:00:00Z", **fields: object
) -> str:
    return json.dumps({"event": event, "level": level, "timestamp": at, **fields})


def test_lines_of_one_cause_are_one_group_with_count_first_last_and_highest_level() -> None:
    relay = [
        line("outbox.publish_failed", at="2026-12-01T08:00:00Z", error="KafkaTimeoutError"),
        line(
            "outbox.publish_failed", "error", at="2026-12-01T09:30:00Z", error="KafkaTimeoutError"
        ),
        line("outbox.publish_failed", at="2026-12-01T07:15:00Z", error="KafkaTimeoutError"),
        line(
            "outbox.publish_failed", at="2026-12-01T08:10:00Z", error="NotLeaderForPartitionError"
        ),
        line("outbox.published", "info", count=3),
    ]
    sink = [
        line("subscriber.dead_lettered", subscriber="bapenda-izin", error="WebhookRejectedError")
    ]
    report = group_logs({"relay.log": relay, "sink.log": sink})
    assert report.lines == 6
    assert report.below_level == 1
    assert report.unparsable == 0
    first = report.groups[0]
    assert (first.origin, first.event, first.error_type) == (
        "relay.log",
        "outbox.publish_failed",
        "KafkaTimeoutError",
    )
    assert first.count == 3
    assert first.level == "error"
    assert first.first == datetime(2026, 12, 1, 7, 15, tzinfo=UTC)
    assert first.last == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    causes = {(g.origin, g.event, g.error_type): g.count for g in report.groups}
    assert causes == {
        ("relay.log", "outbox.publish_failed", "KafkaTimeoutError"): 3,
        ("relay.log", "outbox.publish_failed", "NotLeaderForPartitionError"): 1,
        (
            "sink.log (subscriber bapenda-izin)",
            "subscriber.dead_lettered",
            "WebhookRejectedError",
        ): 1,
    }


def test_level_error_leaves_warnings_out_and_counts_them() -> None:
    lines = [line("a.warn"), line("b.fail", "error"), line("c.crash", "critical")]
    report = group_logs({"x.log": lines}, level="error")
    assert [g.event for g in report.groups] == ["b.fail", "c.crash"]
    assert report.below_level == 1


def test_lines_that_are_no_json_log_lines_are_counted_never_shown() -> None:
    lines = [
        f"2026-12-01 08:00:00 [warning  ] sink.failed nik={NIK}",  # the console renderer
        "[1, 2]",
        json.dumps({"level": "error", "message": NAME}),  # no event
        "",
        line("sink.failed"),
    ]
    report = group_logs({"x.log": lines})
    assert report.unparsable == 3
    assert report.lines == 4
    text = json.dumps(report.to_json())
    assert NIK not in text
    assert NAME not in text


def test_the_error_type_comes_from_the_class_field_the_exception_or_the_message() -> None:
    lines = [
        line("a", error_class="PermanentError"),
        line(
            "b",
            exception="Traceback:\n  File x\nsqlalchemy.exc.OperationalError: boom",
        ),
        line("c", error="ConnectError: [Errno 111] Connection refused"),
        line("d", error="the ledger table 'spbe_ledger' does not exist"),
    ]
    report = group_logs({"x.log": lines})
    assert {g.event: g.error_type for g in report.groups} == {
        "a": "PermanentError",
        "b": "OperationalError",
        "c": "ConnectError",
        "d": None,
    }


def test_an_example_keeps_technical_fields_and_masks_or_drops_what_could_be_personal() -> None:
    personal = line(
        "sink.apply_failed",
        at="2026-12-01T10:00:00Z",
        subscriber="dinsos-penduduk",
        topic="spbe.dukcapil.penduduk.v1.for.dinsos-penduduk",
        offset=41,
        error=(
            f"IntegrityError: duplicate key for '{NAME}' (nik {NIK}) in 'penduduk_dtsen', mail "
            f"'siti@example.id', phone 081234567890 [SQL: INSERT INTO penduduk_dtsen] "
            f"[parameters: ('{NAME}', '{NIK}')]"
        ),
        body_excerpt=f"<p>{NAME}</p>",
        nama_lengkap=NAME,
        alamat={"jalan": "Jl. Dago 1"},
        exception=f"Traceback\n  File x\n    row = {{'nama': '{NAME}'}}\nValueError: '{NAME}'",
    )
    report = group_logs({"dinsos.log": [personal]})
    (group,) = report.groups
    text = json.dumps(report.to_json(), ensure_ascii=False)
    for secret in (NAME, "Siti", NIK, "siti@example.id", "081234567890", "Jl. Dago"):
        assert secret not in text, secret
    assert "body_excerpt" not in group.example
    assert "nama_lengkap" not in group.example
    assert "offset=41" in group.example
    assert "'penduduk_dtsen'" in group.example  # a table name stays
    assert "spbe.dukcapil.penduduk.v1.for.dinsos-penduduk" in group.example
    assert "[SQL and parameters dropped]" in group.example
    assert "exception=\"ValueError: '***'\"" in group.example


def test_masking_spares_apostrophes_and_technical_names() -> None:
    assert mask_message("the steward's relay can't reach '127.0.0.1:9092'") == (
        "the steward's relay can't reach '127.0.0.1:9092'"
    )
    assert mask_message('nama "Budi"') == 'nama "***"'
    assert len(mask_message("x" * 1000)) == 300


def test_an_unknown_level_names_the_field_and_the_levels() -> None:
    with pytest.raises(ConfigError) as caught:
        group_logs({}, level="loud")
    assert "level: 'loud' is not a log level" in caught.value.message
    assert caught.value.fix is not None
    assert "warning" in caught.value.fix


# --- the command -------------------------------------------------------------------------------


def test_the_command_prints_the_table_and_exits_1_when_there_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "bapenda-izin-sink.log"
    log.write_text(
        "\n".join(
            [
                line("subscriber.handler_failed", error="WebhookUnavailableError", offset=n)
                for n in range(4)
            ]
            + ["not json", line("subscriber.started", "info")]
        )
        + "\n"
    )
    assert main(["logs", str(log)]) == 1
    out = capsys.readouterr().out
    assert "1 cause at warning or above in 6 lines of bapenda-izin-sink.log" in out
    assert "1 below warning; 1 unparsable" in out
    assert "     4  warning" in out
    assert "subscriber.handler_failed  WebhookUnavailableError" in out

    assert main(["logs", str(log), "--json", "--level", "error"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["groups"] == []
    assert data["below_level"] == 5


def test_the_command_refuses_a_missing_file_and_an_unknown_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", str(tmp_path / "nope.log")]) == 1
    assert "FILE:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["logs", "--level", "loud", str(tmp_path)])
    assert exited.value.code == 2
    assert "--level" in capsys.readouterr().err


# A webhook sink, as `spbe-bus run` builds it, delivering to an endpoint nobody serves, in a
# fresh interpreter that logs as a service does (configure_logging, JSON lines, a file).
_FAILING_SINK = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from bus.contract.envelope import DataClassification, Envelope
    from bus.delivery import Delivery
    from bus.errors import BusError
    from bus.logs import configure_logging
    from adapters.sinks.webhook import WebhookSink, WebhookSinkConfig
    from tests.support.events import penduduk

    port, path = int(sys.argv[1]), sys.argv[2]

    async def deliver() -> None:
        config = WebhookSinkConfig(url=f"http://127.0.0.1:{port}/spbe", secret=b"s" * 32)
        async with WebhookSink(config) as sink:
            for serial in range(1, 4):
                event = penduduk(serial)
                envelope = Envelope(
                    source="ID/PEMDA-3273/DISDUKCAPIL/siak",
                    type="id.go.spbe.dukcapil.PendudukUpdated.v1",
                    steward="DISDUKCAPIL",
                    partitionkey="k",
                    dataclassification=DataClassification.RESTRICTED,
                    time=datetime(2026, 6, 1, tzinfo=UTC),
                )
                topic = "spbe.dukcapil.penduduk.v1"
                delivery = Delivery(event, envelope, topic, 0, serial, b"k", 1)
                try:
                    await sink(delivery)
                except BusError:
                    pass

    with open(path, "w") as log:
        configure_logging(json=True, level="INFO", stream=log)
        asyncio.run(deliver())
    """
)


def test_a_real_adapters_log_is_grouped_by_its_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dinkes-penduduk-webhook.log"
    port = free_port_block(1)  # nobody listens there
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", _FAILING_SINK, str(port), str(log)],
        check=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    written = log.read_text().splitlines()
    assert len(written) >= 3
    assert main(["logs", "--json", str(log)]) == 1
    data = json.loads(capsys.readouterr().out)
    (group,) = data["groups"]
    assert group["event"] == "webhook.unreachable"
    assert group["error_type"] == "ConnectError"
    assert group["count"] == 3
    assert group["first"] <= group["last"]
    assert f'endpoint="127.0.0.1:{port}"' in group["example"]
    assert "327302570890000" not in json.dumps(data)  # the events' NIKs


def test_masking_drops_a_databases_detail_and_masks_rows_pairs_and_split_numbers() -> None:
    assert mask_message("DETAIL:  Key (nama)=(Siti Aminah) already exists.") == ("[detail dropped]")
    assert mask_message('violates "penduduk_nama_key"\nDETAIL:  Key (nama)=(Siti)') == (
        'violates "penduduk_nama_key" [detail dropped]'
    )
    assert mask_message("Key (nama)=(Siti Aminah) already exists.") == (
        "Key (nama)=(***) already exists."
    )
    assert mask_message("Failing row contains (Siti Aminah, Jl. Merdeka No. 5, 1990-01-01).") == (
        "Failing row contains (***)."
    )
    assert mask_message("nama=Siti Aminah alamat=Jl Merdeka 5 hp 0812-3456-7890") == (
        "nama=*** alamat=***"
    )
    assert mask_message("host=127.0.0.1 port=5432 hp 0812 3456 7890") == (
        "host=127.0.0.1 port=5432 hp ***"
    )
    event_id = "01934567-8901-7abc-bb8b-349941234567"
    assert mask_message(f"event {event_id} refused") == f"event {event_id} refused"


def test_the_error_type_of_a_sqlalchemy_traceback_is_its_exception_not_its_background_line() -> (
    None
):
    import traceback

    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    with engine.begin() as db:
        db.execute(sa.text("CREATE TABLE penduduk (nik TEXT PRIMARY KEY, nama TEXT NOT NULL)"))
    try:
        with engine.begin() as db:
            db.execute(sa.text("INSERT INTO penduduk VALUES (:nik, NULL)"), {"nik": NIK})
    except sa.exc.IntegrityError as exc:
        formatted = "".join(traceback.format_exception(exc))
    engine.dispose()
    assert formatted.rstrip().splitlines()[-1].startswith("(Background on this error at:")

    report = group_logs({"x.log": [line("sink.crashed", "error", exception=formatted)]})
    (group,) = report.groups
    assert group.error_type == "IntegrityError"
    assert group.example == (
        'sink.crashed exception="sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) '
        'NOT NULL constraint failed: penduduk.nama"'
    )
    assert NIK not in json.dumps(report.to_json())


def test_no_exception_line_means_no_error_type_and_no_exception_in_the_example() -> None:
    lines = [line("a", exception=f"Traceback\n  File x\nDETAIL: {NAME}\nSiti: x")]
    (group,) = group_logs({"x.log": lines}).groups
    assert group.error_type is None
    assert "exception" not in group.example
    assert "Siti" not in json.dumps(group.to_json())
