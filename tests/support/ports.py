"""Free loopback ports for brokers started by tests."""

from __future__ import annotations

import random
import socket

__all__ = ["free_port_block"]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive ports that are free right now."""
    rng = random.Random()
    for _ in range(200):
        # Below the ephemeral range (32768 and up on Linux): a client connecting to a port
        # there while nothing listens can connect to itself and hold the port.
        base = rng.randrange(20000, 32768 - size)
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports found")
