"""``spbe-bus catalog asyncapi | metadata``: the catalogue as machine-readable descriptions.

``catalog asyncapi`` writes the AsyncAPI 3.0 document (:mod:`bus.ops.asyncapi`) as JSON or
YAML; ``catalog metadata`` writes each data set's Dublin Core record
(:mod:`bus.ops.dublin_core`) as JSON or RDF/Turtle. Both read only files (the catalogue
and the data standard), never a cluster; without ``--output`` they write to stdout.
``docs/api/asyncapi.json``, ``docs/api/datasets.json`` and ``docs/api/datasets.ttl`` are
their output for ``deploy/catalog.yaml`` (a unit test compares them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from bus.contract.standard import load_standard
from bus.errors import ConfigError
from bus.ops.asyncapi import DEFAULT_SERVERS, asyncapi_document, asyncapi_json
from bus.ops.catalog import default_catalog_path, load_catalog
from bus.ops.dublin_core import dataset_records, records_json, to_turtle

__all__ = ["add_describe_commands", "parse_server"]


def add_describe_commands(csub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``catalog asyncapi`` and ``catalog metadata``."""
    asyncapi = csub.add_parser(
        "asyncapi",
        help="write the AsyncAPI 3.0 document of the catalogue and the data standard",
        description="Servers with their security scheme, a channel per topic (raw and "
        "projected), messages with their Avro schemas and CloudEvents headers, send and "
        "receive operations per steward application and subscriber.",
    )
    _add_common(asyncapi, ("json", "yaml"))
    asyncapi.add_argument(
        "--server",
        action="append",
        dest="servers",
        type=parse_server,
        metavar="NAME=HOST:PORT",
        help="a broker of the document (repeatable; default "
        + ", ".join(f"{n}={a}" for n, a in DEFAULT_SERVERS.items())
        + ")",
    )
    asyncapi.set_defaults(handler=_asyncapi)

    metadata = csub.add_parser(
        "metadata",
        help="write each data set's Dublin Core record (JSON or DCMI-terms Turtle)",
        description="One record per topic: title, description, creator and publisher (the "
        "steward), subject, rights and language from the schemas' spbe.dublincore, "
        "accessRights from the classification, spatial from the steward's kode wilayah.",
    )
    _add_common(metadata, ("json", "turtle"))
    metadata.set_defaults(handler=_metadata)


def _add_common(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument(
        "--catalog",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the catalogue (default: {default_catalog_path()})",
    )
    parser.add_argument(
        "--format", choices=formats, default=formats[0], help=f"default {formats[0]}"
    )
    parser.add_argument(
        "--output", "-o", type=Path, default=None, metavar="FILE", help="write here, not stdout"
    )


def parse_server(text: str) -> tuple[str, str]:
    """``NAME=HOST:PORT`` -> (name, address); an argparse error names the rule."""
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not name.strip() or not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(
            f"--server {text!r} is not NAME=HOST:PORT (e.g. kafka-1=kafka-1.spbe.internal:9092)"
        )
    return name.strip(), address.strip()


def _asyncapi(args: argparse.Namespace) -> int:
    standard = load_standard()
    catalog, _ = load_catalog(args.catalog, standard=standard)
    servers = None
    if args.servers:
        servers = dict(args.servers)
        if len(servers) != len(args.servers):
            raise ConfigError(
                "--server: a name is given twice", fix="give each broker its own name"
            )
    document = asyncapi_document(catalog, standard, servers=servers)
    if args.format == "yaml":
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    else:
        text = asyncapi_json(document)
    what = (
        f"AsyncAPI {document['asyncapi']} document: {len(document['channels'])} channels, "
        f"{len(document['operations'])} operations"
    )
    return _write(args.output, text, what)


def _metadata(args: argparse.Namespace) -> int:
    standard = load_standard()
    catalog, _ = load_catalog(args.catalog, standard=standard)
    records = dataset_records(catalog, standard)
    text = to_turtle(records) if args.format == "turtle" else records_json(records)
    return _write(args.output, text, f"Dublin Core records of {len(records)} data sets")


def _write(output: Path | None, text: str, what: str) -> int:
    if output is None:
        sys.stdout.write(text)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"{output}: {what}")
    return 0
