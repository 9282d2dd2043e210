"""PID files and the processes they name: alive, ours, stopped.

A PID file is trusted only if the process it names is alive *and* its command line
shows our broker started with this node's ``server.properties``: a recycled PID that
now belongs to someone else's process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["is_alive", "is_our_broker", "read_pid", "reap"]


def read_pid(pid_file: Path) -> int | None:
    """The PID in ``pid_file``, or None if there is no file or it holds no number."""
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, which has exited, counts as gone)."""
    reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The state letter follows the parenthesised command name, which may hold spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def is_our_broker(pid: int, properties_file: Path) -> bool:
    """True if ``pid`` is a Kafka broker started with ``properties_file``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError):
        return False
    args = [part.decode(errors="replace") for part in cmdline]
    return "kafka.Kafka" in args and str(properties_file) in args
