"""The operator console: a read-only HTTPS page of the bus's live state, behind a login.

Per subscription: lag, last applied event, dead letters waiting (the newest masked),
contract expiry; per adapter: up or down from its health URL; the newest audit records.
``spbe-bus console serve --config deploy/console.yaml`` runs it (docs/operator/console.md).
"""

from adapters.console.app import LOGIN_ACTION, SECURITY_HEADERS, ConsoleApp
from adapters.console.collector import HEALTH_TIMEOUT_S, StateCollector
from adapters.console.config import (
    DEFAULT_CONSOLE_PORT,
    DEFAULT_SESSION_TTL_S,
    MIN_SESSION_KEY_BYTES,
    ConsoleAdapter,
    ConsoleConfig,
    ConsoleFile,
    ConsoleOperator,
)
from adapters.console.service import Console
from adapters.console.sessions import SESSION_COOKIE, Session, Sessions
from adapters.console.state import AdapterHealth, audit_view, console_state, iso

__all__ = [
    "DEFAULT_CONSOLE_PORT",
    "DEFAULT_SESSION_TTL_S",
    "HEALTH_TIMEOUT_S",
    "LOGIN_ACTION",
    "MIN_SESSION_KEY_BYTES",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "AdapterHealth",
    "Console",
    "ConsoleAdapter",
    "ConsoleApp",
    "ConsoleConfig",
    "ConsoleFile",
    "ConsoleOperator",
    "Session",
    "Sessions",
    "StateCollector",
    "audit_view",
    "console_state",
    "iso",
]
