"""structlog set-up: JSON lines for services, readable key=value for a terminal.

Log events are data: a name such as ``kafka.node.started`` plus bound context
(topic, partition, offset, event id, subscriber). Personal data (NIK, names) is
never a log value; pseudonymised keys are.

Every module of the bus logs through :func:`get_logger`. Until the application configures
structlog (itself, or with :func:`configure_logging`), those loggers write INFO and above
to stderr and nothing below: structlog's own defaults would print every DEBUG line to
stdout, which costs a service a line per event and mixes logs into a command's output.
Once structlog is configured, the bus follows that configuration. A logger bound before
(``log.bind(...)`` in a constructor) keeps the set-up it was bound under.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

import structlog

__all__ = ["configure_logging", "get_logger"]


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


#: What an unconfigured bus logs: INFO and above, key=value lines, to stderr.
_QUIET: Any = structlog.wrap_logger(
    structlog.PrintLogger(cast(TextIO, _CurrentStderr())),
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.dev.ConsoleRenderer(colors=False),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    cache_logger_on_first_use=True,
)


class LibraryLogger:
    """A module's logger: the application's structlog set-up once there is one, else quiet."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name)
        return _QUIET

    def bind(self, **values: Any) -> Any:
        """A logger with ``values`` bound, resolved against the set-up of this moment."""
        return self._target().bind(**values)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._target(), method)


def get_logger(name: str) -> Any:
    """The logger a bus module uses (see the module docstring for what an unconfigured one does).

    Typed ``Any`` as :func:`structlog.get_logger` is: the methods are structlog's.
    """
    return LibraryLogger(name)
