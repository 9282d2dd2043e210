"""The demo's databases: one per OPD, the ledger's, and the REST gateway's."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

__all__ = ["GATEWAY", "LEDGER", "OPDS", "database_urls"]

OPDS = ("disdukcapil", "dpmptsp", "bapenda", "dinsos")
#: The bus's own database: the delivery ledger.
LEDGER = "ledger"
#: The REST gateway's read models and idempotency keys (a SQLite file in the work dir).
GATEWAY = "gateway"


def database_urls(work_dir: Path, server_url: str | None) -> dict[str, str]:
    """One database per OPD and the ledger's: SQLite files in ``work_dir``, or fresh
    databases on a server; the gateway's is a SQLite file in ``work_dir`` either way."""
    names = (*OPDS, LEDGER)
    gateway = {GATEWAY: f"sqlite:///{work_dir / f'{GATEWAY}.db'}"}
    if server_url is None:
        return {name: f"sqlite:///{work_dir / f'{name}.db'}" for name in names} | gateway
    base = sa.engine.make_url(server_url)
    suffix = time.strftime("%Y%m%d%H%M%S")
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    urls = {}
    with engine.connect() as conn:
        for opd in names:
            name = f"demo_{opd}_{suffix}"
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
            urls[opd] = base.set(database=name).render_as_string(hide_password=False)
    engine.dispose()
    return urls | gateway
