"""An application that never configured logging hears nothing below INFO, and only on stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Runs in a fresh interpreter: the test session configured structlog already.
_UNCONFIGURED = textwrap.dedent(
    """
    from bus.logs import get_logger
    from bus.publisher import Publisher, PublisherConfig

    log = get_logger("bus.example")
    log.debug("example.debug_line", detail=1)
    log.info("example.info_line", detail=2)
    bound = log.bind(source="ID/PEMDA-3273/DPMPTSP/sicantik")
    bound.debug("example.bound_debug")
    bound.warning("example.bound_warning")
    # A library object built with no logging set-up, as the README's first example does.
    Publisher(PublisherConfig(bootstrap_servers="127.0.0.1:1",
                              source="ID/PEMDA-3273/DPMPTSP/sicantik"))
    print("program output")
    """
)

_CONFIGURED_LATER = textwrap.dedent(
    """
    import logging, structlog, sys
    from bus.logs import get_logger

    log = get_logger("bus.example")
    log.debug("before.debug")
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    )
    log.debug("after.debug")
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )


def test_an_unconfigured_bus_logs_info_and_above_to_stderr_and_nothing_to_stdout() -> None:
    done = _run(_UNCONFIGURED)
    assert done.stdout == "program output\n"
    assert "example.info_line" in done.stderr
    assert "example.bound_warning" in done.stderr
    assert "debug" not in done.stderr.lower()


def test_once_the_application_configures_structlog_the_bus_follows_it() -> None:
    done = _run(_CONFIGURED_LATER)
    assert "before.debug" not in done.stdout + done.stderr
    assert '"event": "after.debug"' in done.stdout
    assert '"level": "debug"' in done.stdout


def test_every_module_logs_through_bus_logs() -> None:
    root = Path(__file__).resolve().parents[2]
    direct = [
        str(path.relative_to(root))
        for folder in ("bus", "adapters")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "logs.py" and "structlog.get_logger" in path.read_text()
    ]
    assert not direct, f"use bus.logs.get_logger, not structlog.get_logger: {direct}"
