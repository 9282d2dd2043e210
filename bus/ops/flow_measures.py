"""Measuring each data flow on a running cluster: how often events travel, and how it is doing.

Frequency comes from the broker's offsets alone, without reading a record: for every
partition of the topic a flow reads, the number of records since ``now - window`` is the end
offset minus the first offset at or after that time (``offsets_for_times``). A topic younger
than the window is divided by its age instead, from its first record's timestamp (the offset
for time 0), never less than :data:`MIN_SPAN` so a topic a minute old does not claim a
million events a day; an empty topic has no frequency (None). Records older than the
retention are gone from the broker, so a short retention counts only what it keeps.

Lag, the last applied event and the waiting dead letters come from
:func:`bus.ops.status.collect_status`, per flow: the partitions of the topic it reads and its
own ``<reads>.dlq.<subscriber>``. :func:`bus.ops.flows.flow_state` turns them into a state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bus.connection import KafkaConnection, as_connection
from bus.delivery import dlq_topic
from bus.errors import ConfigError
from bus.logs import get_logger
from bus.ops.catalog import Catalog
from bus.ops.flows import Flow, FlowMeasure, FlowState, flow_graph, flow_state
from bus.ops.status import StatusError, StatusReport, collect_status
from bus.startup import LiveNodeAdmin, close_client, start_client

__all__ = [
    "DEFAULT_WINDOW",
    "MIN_SPAN",
    "count_rate",
    "flow_rates",
    "measure_flows",
    "measures_of",
]

DEFAULT_WINDOW = timedelta(days=7)
#: The shortest span a young topic's count is divided by.
MIN_SPAN = timedelta(hours=1)

_DAY_S = 86_400.0

log = get_logger(__name__)


def count_rate(
    events: int, *, first: datetime | None, now: datetime, window: timedelta
) -> float | None:
    """Events per day of ``events`` counted since ``now - window`` (or since ``first``, the
    topic's first record, when that is later); None when the topic never held a record."""
    if first is None:
        return None
    span = min(window, max(now - first, MIN_SPAN))
    return events / (span.total_seconds() / _DAY_S)


async def measure_flows(
    kafka: KafkaConnection | str,
    catalog: Catalog,
    *,
    window: timedelta = DEFAULT_WINDOW,
    max_lag: int = 1000,
    now: datetime | None = None,
    today: date | None = None,
) -> dict[str, FlowMeasure]:
    """Flow key -> its measure, for every flow of ``catalog``; expiry judged as of ``today``
    (default: ``now``'s date in UTC), rates over the window before ``now``."""
    _check_window(window)
    moment = now or datetime.now(UTC)
    flows = flow_graph(catalog).flows
    connection = as_connection(kafka)
    rates = await flow_rates(connection, {f.reads for f in flows}, now=moment, window=window)
    report = await collect_status(connection, catalog, subscribers={f.subscriber for f in flows})
    day = today or moment.astimezone(UTC).date()
    result = measures_of(flows, report, rates, today=day, max_lag=max_lag)
    log.info(
        "flows.measured",
        flows=len(result),
        window_days=window / timedelta(days=1),
        states={s.value: sum(m.state is s for m in result.values()) for s in FlowState},
    )
    return result


def measures_of(
    flows: Iterable[Flow],
    report: StatusReport,
    rates: Mapping[str, float | None],
    *,
    today: date,
    max_lag: int,
) -> dict[str, FlowMeasure]:
    """Flow key -> its measure, from a status report already read and the rates of
    :func:`flow_rates` (for a caller that reads the status anyway, like the console)."""
    result: dict[str, FlowMeasure] = {}
    for flow in flows:
        lag, dead, last = _status_of(report, flow)
        result[flow.key] = FlowMeasure(
            events_per_day=rates.get(flow.reads),
            lag=lag,
            dead_letters=dead,
            last_applied=last,
            state=flow_state(flow, lag=lag, dead_letters=dead, today=today, max_lag=max_lag),
        )
    return result


def _check_window(window: timedelta) -> None:
    if window <= timedelta(0):
        raise ConfigError(
            f"window: {window} is not a positive duration",
            fix="measure over at least one day (--window-days 1 or more)",
        )


def _status_of(report: StatusReport, flow: Flow) -> tuple[int | None, int | None, datetime | None]:
    """Lag, dead letters waiting and last applied time of ``flow`` in ``report``."""
    status = next((s for s in report.subscribers if s.subscriber == flow.subscriber), None)
    if status is None or flow.reads in status.missing_topics:
        return None, None, None
    parts = [p for p in status.partitions if p.topic == flow.reads]
    if not parts:
        return None, None, None
    dlq = dlq_topic(flow.reads, flow.subscriber)
    dead = next((d.count for d in status.dead_letters if d.topic == dlq and d.exists), None)
    times = [p.last_applied for p in parts if p.last_applied is not None]
    return sum(p.lag for p in parts), dead, max(times, default=None)


async def flow_rates(
    kafka: KafkaConnection | str,
    topics: Iterable[str],
    *,
    now: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> dict[str, float | None]:
    """Topic -> events per day over the window, for the topics of ``topics`` that exist."""
    _check_window(window)
    now = now or datetime.now(UTC)
    connection = as_connection(kafka)
    names = sorted(set(topics))
    bootstrap = connection.bootstrap_servers
    admin = await start_client(
        lambda: LiveNodeAdmin(**connection.aiokafka_options()),
        "measure the data flows",
        bootstrap_servers=bootstrap,
        security=connection.security,
    )
    try:
        consumer = await start_client(
            lambda: AIOKafkaConsumer(**connection.aiokafka_options(), enable_auto_commit=False),
            "read the offsets of the data flows",
            bootstrap_servers=bootstrap,
            security=connection.security,
        )
    except BaseException:
        await close_client(admin)
        raise
    since = int((now - window).timestamp() * 1000)
    try:
        described = await admin.describe_topics(names)
        tps = [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["partitions"]
            for p in t["partitions"]
        ]
        if not tps:
            return {}
        ends: Mapping[TopicPartition, int] = await consumer.end_offsets(tps)
        firsts = await consumer.offsets_for_times(dict.fromkeys(tps, 0))
        recent = await consumer.offsets_for_times(dict.fromkeys(tps, since))
    except KafkaError as exc:
        raise StatusError(
            f"cannot read the offsets of the data flows from Kafka at {bootstrap}: "
            f"{type(exc).__name__}: {exc}",
            fix="check --bootstrap (or $SPBE_KAFKA_BOOTSTRAP) and that the brokers run",
        ) from exc
    finally:
        await consumer.stop()
        await admin.close()
    counts: dict[str, int] = {}
    first: dict[str, datetime] = {}
    for tp in tps:
        counts.setdefault(tp.topic, 0)
        found = recent.get(tp)
        if found is not None:
            counts[tp.topic] += max(0, ends[tp] - found.offset)
        oldest = firsts.get(tp)
        if oldest is not None:
            stamp = datetime.fromtimestamp(oldest.timestamp / 1000, UTC)
            first[tp.topic] = min(stamp, first.get(tp.topic, stamp))
    return {
        topic: count_rate(count, first=first.get(topic), now=now, window=window)
        for topic, count in counts.items()
    }
