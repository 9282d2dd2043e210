"""structlog set-up: JSON lines for services, readable key=value for a terminal.

Log events are data: a name such as ``kafka.node.started`` plus bound context
(topic, partition, offset, event id, subscriber). Personal data (NIK, names) is
never a log value; pseudonymised keys are.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

__all__ = ["configure_logging"]


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not at set-up.

    Test runners and daemons swap ``sys.stderr``; a logger bound to the old object would
    write into a closed stream.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    *, json: bool | None = None, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send structlog output to ``stream`` (stderr by default).

    ``json=None`` picks JSON when the stream is not a terminal, so services and CI get
    machine-readable lines and a person at a shell gets readable ones.
    """
    out: TextIO = stream or cast(TextIO, _CurrentStderr())
    use_json = (not out.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
