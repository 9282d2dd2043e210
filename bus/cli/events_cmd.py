"""``spbe-bus events validate | encode | decode``: check and inspect single events.

For OPD developers and their CI: is this JSON a valid ``IzinDiterbitkan``? What bytes does
the bus put on the wire for it? What is in this message someone pulled off a topic?
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bus.contract import codec
from bus.contract.codec import InMemorySchemas
from bus.contract.events import EVENT_TYPES
from bus.contract.schema import AvroSchema
from bus.contract.standard import default_schema_dir, load_standard
from bus.contract.validation import event_class_of, validate_json_event
from bus.errors import ConfigError, EventValidationError

__all__ = ["add_events_commands"]


def add_events_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = sub.add_parser("events", help="validate, encode and decode single events")
    esub = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--schemas",
            type=Path,
            default=None,
            help=f"the data standard's .avsc folder (default {default_schema_dir()})",
        )
        return p

    validate = common(esub.add_parser("validate", help="exit 0 if FILE is a valid event"))
    validate.add_argument("file", type=Path, metavar="FILE.json")
    validate.add_argument("--type", required=True, dest="event_type", metavar="EventName")
    validate.set_defaults(handler=_validate)

    encode = common(esub.add_parser("encode", help="write FILE's Avro single-object bytes"))
    encode.add_argument("file", type=Path, metavar="FILE.json")
    encode.add_argument("--type", required=True, dest="event_type", metavar="EventName")
    encode.add_argument(
        "--output", "-o", type=Path, default=None, help="write here instead of stdout"
    )
    encode.set_defaults(handler=_encode)

    decode = common(esub.add_parser("decode", help="print an Avro single-object datum as JSON"))
    decode.add_argument("file", type=Path, metavar="FILE.bin", help="'-' reads stdin")
    decode.set_defaults(handler=_decode)


def _read_json(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def _schema(standard: dict[str, AvroSchema], event_type: str) -> AvroSchema:
    schema = standard.get(event_type)
    if schema is None:
        raise ConfigError(f"the data standard has no schema for {event_type}")
    return schema


def _validate(args: argparse.Namespace) -> int:
    event_class_of(args.event_type)
    data = _read_json(args.file)
    # The gateway's ingress asks the same function: what passes here passes there.
    try:
        validate_json_event(args.event_type, data, load_standard(args.schemas))
    except EventValidationError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid {args.event_type}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    event_class = event_class_of(args.event_type)
    event = event_class.from_json(_read_json(args.file))
    data = codec.encode(_schema(load_standard(args.schemas), args.event_type), event.to_avro())
    if args.output is not None:
        args.output.write_bytes(data)
        return 0
    if sys.stdout.isatty():
        raise ConfigError(
            "refusing to write binary Avro to a terminal",
            fix="redirect to a file (> event.bin) or use --output FILE",
        )
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def _decode(args: argparse.Namespace) -> int:
    data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    standard = load_standard(args.schemas)
    writer, datum = codec.decode(data, InMemorySchemas(standard.values()))
    event_class = EVENT_TYPES.get(writer.record_name)
    body = event_class.from_avro(datum).to_json() if event_class else _jsonable(datum)
    print(
        json.dumps(
            {"schema": writer.name, "fingerprint": f"{writer.fingerprint:016x}", "event": body},
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
