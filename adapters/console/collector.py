"""The console's one background task: read the bus every ``refresh_s``, keep the snapshot.

Requests never touch Kafka: they read :attr:`StateCollector.snapshot`, which
:meth:`StateCollector.run` replaces after each complete read. A read is
``spbe-bus status``'s :func:`~bus.ops.status.collect_status` (lag, last applied, dead
letters), the newest ``dead_letter_samples`` dead letters of each subscriber that has any
(only the tail of its dead letter topics: :func:`~bus.ops.dlq.latest_dead_letters`),
described masked, the newest ``audit_records`` of ``_spbe.audit``, and a ``GET`` of each
adapter's health URL (2 s timeout), all at once; then the data-flow diagram
(:mod:`bus.ops.flow_diagram`) coloured by the state just read, as an SVG for the page
(drawing elements only: :func:`~adapters.console.svg_safety.safe_svg`), with
each flow's events per day (:func:`~bus.ops.flow_measures.flow_rates`, read again at most
every :data:`RATES_EVERY_S`: a week's rate does not move in seconds). A read that fails
keeps the previous snapshot and says why in its ``error`` (the bus's named errors; of any
other only its type, never a record's content); the log line ``console.read_failed`` adds
the types of its causes and the frames it was raised through (file, line, function),
never an exception's message, which could quote a record.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from aiokafka.errors import KafkaError

from adapters.console.config import ConsoleAdapter, ConsoleConfig
from adapters.console.state import AdapterHealth, console_state
from adapters.console.svg_safety import safe_svg
from bus.contract.message import IncomingEvent
from bus.decoding import RecordDecoder
from bus.delivery import dlq_topic
from bus.errors import BusError, ContractError
from bus.logs import get_logger
from bus.ops.audit import read_audit
from bus.ops.dlq import latest_dead_letters
from bus.ops.dlq_records import DeadLetter, describe, mask_text
from bus.ops.flow_diagram import draw, embeddable_svg, to_dot
from bus.ops.flow_measures import flow_rates, measures_of
from bus.ops.flows import FlowMeasure, flow_graph
from bus.ops.status import StatusReport, collect_status

__all__ = ["HEALTH_TIMEOUT_S", "RATES_EVERY_S", "StateCollector"]

log = get_logger("adapters.console")

#: How long an adapter's health URL has to answer before it counts as down.
HEALTH_TIMEOUT_S: Final = 2.0
#: How often the flows' events per day are read again from the broker's offsets.
RATES_EVERY_S: Final = 60.0
#: How long the last-applied lookup of one read may wait for its records.
_FETCH_TIMEOUT_S: Final = 5.0


class StateCollector:
    """Reads the state the console shows; :attr:`snapshot` is the latest complete read."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._decoder: RecordDecoder | None = None
        self._graph = flow_graph(config.catalogue)
        self._rates: dict[str, float | None] = {}
        self._rates_read_at: float | None = None
        self._drawn: tuple[str, str] | None = None  # (DOT source, its SVG)
        self._tls = {
            a.name: ssl.create_default_context(cafile=str(a.ca_file))
            for a in config.adapters
            if a.ca_file is not None
        }
        self.snapshot: dict[str, Any] = {
            "taken_at": None,
            "error": None,
            "refresh_s": config.refresh_s,
            "subscriptions": [],
            "adapters": [],
            "audit": [],
            "diagram": None,
            "diagram_error": None,
        }
        self.reads = 0

    async def start(self) -> None:
        """Open the schema registry the dead letters are decoded with."""
        if self._decoder is None:
            decoder = RecordDecoder.connect(self.config.connection)
            await decoder.start()
            self._decoder = decoder

    async def stop(self) -> None:
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            await decoder.stop()

    async def run(self) -> None:
        """Read, replace the snapshot, wait ``refresh_s``; until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.config.refresh_s)

    async def refresh(self) -> None:
        """One complete read; on failure the previous snapshot stays, with the error."""
        try:
            state = await self.read()
        except Exception as exc:  # the page says the read failed; the next one may not
            message = exc.message if isinstance(exc, BusError) else _named(exc)
            log.warning(
                "console.read_failed",
                error=type(exc).__name__,
                message=message,
                causes=_causes(exc),
                where=_where(exc),
            )
            self.snapshot = {**self.snapshot, "error": mask_text(message)}
            return
        self.snapshot = {**state, "error": None, "refresh_s": self.config.refresh_s}
        self.reads += 1

    async def read(self) -> dict[str, Any]:
        """The state as it is now (raises when the cluster cannot be read)."""
        config = self.config
        connection = config.connection
        report, audit, health = await asyncio.gather(
            collect_status(connection, config.catalogue, fetch_timeout_s=_FETCH_TIMEOUT_S),
            read_audit(connection, last=config.audit_records),
            asyncio.gather(*(self._health(a) for a in config.adapters)),
        )
        letters = await self._dead_letters(report)
        today = datetime.now(UTC).date()
        state = console_state(
            report,
            config.catalogue,
            today=today,
            max_lag=config.max_lag,
            dead_letters=letters,
            adapters=health,
            audit=audit,
        )
        measures = measures_of(
            self._graph.flows, report, await self._flow_rates(), today=today, max_lag=config.max_lag
        )
        diagram, problem = await self._diagram(measures, today)
        return {**state, "diagram": diagram, "diagram_error": problem}

    async def _flow_rates(self) -> dict[str, float | None]:
        """The flows' events per day, read again once :data:`RATES_EVERY_S` have passed; a
        failed read keeps the previous rates (the diagram then shows those)."""
        moment = time.monotonic()
        if self._rates_read_at is not None and moment - self._rates_read_at < RATES_EVERY_S:
            return self._rates
        try:
            self._rates = await flow_rates(
                self.config.connection, {f.reads for f in self._graph.flows}
            )
        except BusError as exc:
            log.warning("console.rates_failed", error=type(exc).__name__, message=exc.message)
        self._rates_read_at = moment
        return self._rates

    async def _diagram(
        self, measures: Mapping[str, FlowMeasure], today: date
    ) -> tuple[str | None, str | None]:
        """The coloured diagram as embeddable SVG, drawn again only when its DOT changed;
        or None and why (the rest of the page does not depend on Graphviz)."""
        source = to_dot(self._graph, measures, today=today)
        if self._drawn is not None and self._drawn[0] == source:
            return self._drawn[1], None
        try:
            drawn = await asyncio.to_thread(draw, source, "svg")
            # The page inserts it as live markup: drawing elements only, no link or handler.
            svg = safe_svg(embeddable_svg(drawn))
        except BusError as exc:
            log.warning("console.diagram_failed", error=type(exc).__name__, message=exc.message)
            return None, exc.message
        self._drawn = (source, svg)
        return svg, None

    async def _dead_letters(self, report: StatusReport) -> Mapping[str, Sequence[dict[str, Any]]]:
        limit = self.config.dead_letter_samples
        found: dict[str, list[dict[str, Any]]] = {}
        if limit == 0:
            return found
        for status in report.subscribers:
            views: list[dict[str, Any]] = []
            for dead in status.dead_letters:
                if not dead.exists or dead.count == 0:
                    continue
                topic = dead.topic.removesuffix(dlq_topic("", status.subscriber))
                for letter in await latest_dead_letters(
                    self.config.connection, status.subscriber, topic, limit=limit
                ):
                    views.append(await self._describe(letter))
            views.sort(key=lambda v: str(v.get("dead_lettered_at")), reverse=True)
            found[status.subscriber] = views[:limit]
        return found

    async def _describe(self, letter: DeadLetter) -> dict[str, Any]:
        incoming: IncomingEvent | None = None
        problem: str | None = None
        assert self._decoder is not None, "start() opens the decoder"
        try:
            incoming = await self._decoder.decode(letter.value, letter.original_headers)
        except ContractError as exc:
            problem = type(exc).__name__
        return describe(letter, incoming, problem=problem)

    async def _health(self, adapter: ConsoleAdapter) -> AdapterHealth:
        verify: ssl.SSLContext | bool = self._tls.get(adapter.name, True)
        checked = datetime.now(UTC)
        try:
            async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S, verify=verify) as client:
                answer = await client.get(adapter.health_url)
        except httpx.HTTPError as exc:
            return AdapterHealth(adapter.name, False, f"no answer ({type(exc).__name__})", checked)
        up = 200 <= answer.status_code < 300
        return AdapterHealth(adapter.name, up, f"HTTP {answer.status_code}", checked)


def _causes(exc: BaseException) -> list[str]:
    """The types of what ``exc`` was raised from or during, innermost last."""
    chain: list[str] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(chain) < 10:
        chain.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return chain


def _where(exc: BaseException) -> list[str]:
    """Where ``exc`` was raised: its traceback's frames as ``file:line in function``, without
    its message or any frame's variables (they could quote a record: a dead letter's value
    or an audit record's reason)."""
    return [
        f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    ]


def _named(exc: Exception) -> str:
    """What the page says of an error the bus did not name: its type only (a message
    could quote a record); the log has its type, its causes' types and where it was raised."""
    kind = "Kafka" if isinstance(exc, KafkaError) else "unexpected"
    return f"{kind} error {type(exc).__name__}; see the console's log"
