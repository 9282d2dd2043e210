"""What the Kafka Connect peers are told (pure: no IO).

* :func:`worker_properties`: a standalone worker on loopback, offsets in a file;
* :func:`debezium_outbox`: Debezium's PostgreSQL connector (pgoutput) on one outbox
  table of ours, with Debezium's outbox ``EventRouter`` mapping our columns
  (:data:`OUTBOX_FIELDS`) and routing every row to one fixed topic.

Debezium runs with its defaults otherwise (``poll.interval.ms`` 500, ``max.batch.size``
2048), as our relay runs with its own (poll 200 ms, batches of 500).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = [
    "EVENT_ID_HEADER",
    "OUTBOX_FIELDS",
    "debezium_outbox",
    "render_properties",
    "slot_name",
    "worker_properties",
]

STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
EVENT_ROUTER = "io.debezium.transforms.outbox.EventRouter"
#: EventRouter option -> our outbox column (adapters/sources/outbox/table.py).
OUTBOX_FIELDS = {
    "table.field.event.id": "event_id",
    "table.field.event.key": "aggregate_id",
    "table.field.event.payload": "payload",
    "route.by.field": "event_type",
}
#: The columns EventRouter copies into record headers (column:placement:alias).
OUTBOX_HEADERS = (("event_type", "type"), ("sequence", "sequence"))
#: The header in which EventRouter puts ``table.field.event.id``.
EVENT_ID_HEADER = "id"


def render_properties(settings: Mapping[str, str]) -> str:
    """A Java ``.properties`` file (values here hold no characters that need escaping)."""
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def worker_properties(
    *, bootstrap: str, rest_port: int, offsets_file: Path, plugin_path: list[Path]
) -> dict[str, str]:
    """A standalone Connect worker: REST on ``127.0.0.1:rest_port``, offsets in a file."""
    return {
        "bootstrap.servers": bootstrap,
        "listeners": f"http://127.0.0.1:{rest_port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(rest_port),
        "key.converter": STRING_CONVERTER,
        "value.converter": STRING_CONVERTER,
        "offset.storage.file.filename": str(offsets_file),
        # Debezium confirms a position to the replication slot when Connect commits.
        "offset.flush.interval.ms": "1000",
        "plugin.path": ",".join(str(p) for p in plugin_path),
        "plugin.discovery": "hybrid_warn",
    }


def slot_name(tag: str) -> str:
    """A replication slot (and publication) name: lower-case letters, digits, ``_``."""
    name = "spbe_dbz_" + re.sub(r"[^a-z0-9_]", "_", tag.lower())
    return name[:63]


def debezium_outbox(
    *, database_url: str, table: str, topic: str, tag: str, schema: str = "public"
) -> dict[str, str]:
    """Debezium's PostgreSQL connector streaming ``table`` through the EventRouter to ``topic``.

    The slot and publication are named after ``tag``; the publication covers ``table``
    only (``filtered``). The key is ``aggregate_id`` and the value the ``payload`` text as
    it is (StringConverter), the event id in header ``id``. No snapshot: rows reach
    Kafka by logical decoding alone, as they would in production once the connector
    runs; ``slot.drop.on.stop`` stays off so that a stopped connector keeps its place.
    """
    url = make_url(database_url)
    slot = slot_name(tag)
    config = {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "database.hostname": url.host or "127.0.0.1",
        "database.port": str(url.port or 5432),
        "database.user": url.username or "postgres",
        "database.password": url.password or "",
        "database.dbname": url.database or "postgres",
        "topic.prefix": slot,
        "plugin.name": "pgoutput",
        "slot.name": slot,
        "slot.drop.on.stop": "false",
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "table.include.list": f"{schema}.{table}",
        "snapshot.mode": "no_data",
        "key.converter": STRING_CONVERTER,
        "value.converter": STRING_CONVERTER,
        "transforms": "outbox",
        "transforms.outbox.type": EVENT_ROUTER,
        "transforms.outbox.route.topic.replacement": topic,
        "transforms.outbox.table.expand.json.payload": "false",
        "transforms.outbox.table.fields.additional.placement": ",".join(
            f"{column}:header:{alias}" for column, alias in OUTBOX_HEADERS
        ),
    }
    config.update({f"transforms.outbox.{key}": column for key, column in OUTBOX_FIELDS.items()})
    return config
