"""Day-one snapshot: a large SIAK register in PostgreSQL published into Kafka, rows/s and RSS.

The register is SIAK's ``penduduk`` table (:mod:`adapters.opd.disdukcapil.siak`) in a
database of its own, filled by one ``INSERT ... SELECT`` over ``generate_series`` with
distinct valid NIKs (versions 1 to 3), so a million rows take seconds, not a Python loop.
Then ``spbe-bus snapshot`` runs in a process of its own on the reference SIAK section
(``deploy/adapters/disdukcapil-outbox-relay.yaml``), with the topic overridden; its own
summary gives the rate (first read to last acknowledgement, start-up excluded) and
its ``VmHWM``, sampled while it runs, the process's peak resident set size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from adapters.db import create_engine
from adapters.opd.disdukcapil import siak
from bench.environment import create_topic
from bus.topics import ensure_topics

__all__ = ["fill_register", "measure"]

PARTITIONS = 4
SECRET = "bench-disdukcapil-secret-0123456789"  # noqa: S105 - benchmark data
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "adapters"
# One row per serial: NIK 327302 + DD(41-68, women) MM YY + serial 0001-9999.
_FILL = """
INSERT INTO penduduk (nik, no_kk, nama_lengkap, tempat_lahir, tanggal_lahir, jenis_kelamin,
    agama, status_perkawinan, pekerjaan, pendidikan_terakhir, jalan, rt, rw, kode_wilayah,
    kode_pos, berlaku_sejak, status, versi)
SELECT '327302'
       || lpad((41 + (i / 9999) % 28)::text, 2, '0')
       || lpad((1 + (i / 279972) % 12)::text, 2, '0')
       || lpad((90 + (i / 3359664) % 10)::text, 2, '0')
       || lpad((i % 9999 + 1)::text, 4, '0'),
       '3273022301150007', 'Siti Nurhaliza Rahmawati', 'Bandung', DATE '1990-08-17',
       'PEREMPUAN', 'ISLAM', 'KAWIN', 'WIRASWASTA', 'DIPLOMA_IV_S1',
       'Jl. Cisitu Lama No. 45', '004', '007', '32.73.02.1003', '40135', DATE '2026-01-01',
       'HIDUP', 1 + i % 3
FROM generate_series(0, :rows - 1) AS i
"""


def fill_register(server_url: str, rows: int) -> tuple[str, float]:
    """A new database on the server holding a ``penduduk`` table of ``rows`` rows.

    Returns its URL and the seconds the fill took.
    """
    name = f"bench_siak_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        siak.create_tables(engine)
        started = time.monotonic()
        with engine.begin() as conn:
            conn.execute(sa.text(_FILL), {"rows": rows})
            conn.execute(sa.text("ANALYZE penduduk"))
        return url, time.monotonic() - started
    finally:
        engine.dispose()


def _reference() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (DEPLOY_DIR / "disdukcapil-outbox-relay.yaml").read_text()
    )
    return data


def _adapter_file(
    folder: Path, bootstrap: str, url: str, topic: str, batch_size: int | None
) -> Path:
    reference = _reference()
    if batch_size is not None:
        reference["snapshot"]["batch_size"] = batch_size
    data = {
        "kind": "outbox-relay",
        "relay": {
            "database_url": url,
            "bootstrap_servers": bootstrap,
            "source": reference["relay"]["source"],
            "key_secret": SECRET,
            "topic_overrides": {"PendudukUpdated": topic},
        },
        "snapshot": reference["snapshot"],
    }
    path = folder / "disdukcapil-outbox-relay.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _high_water_kib(pid: int) -> int | None:
    """``VmHWM`` of ``pid``: the peak resident set of the program it runs now (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _run(path: Path) -> tuple[dict[str, Any], float, float | None]:
    """``spbe-bus snapshot`` in its own process: its summary, wall seconds, peak RSS (MiB).

    The peak is the child's ``VmHWM``, sampled until it exits: ``ru_maxrss`` would count
    the parent's pages the child shared between fork and exec (this benchmark's own
    hundred-odd MiB), not the snapshot's.
    """
    command = [sys.executable, "-m", "bus.cli.main", "--log-level", "WARNING", "snapshot"]
    command += [str(path), "--json", "--progress", "none"]
    started = time.monotonic()
    peak: int | None = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        while process.poll() is None:
            sample = _high_water_kib(process.pid)
            if sample is not None:
                peak = max(peak or 0, sample)
            time.sleep(0.1)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"spbe-bus snapshot exited {process.returncode}: "
                + err.read().decode(errors="replace")[-2000:]
            )
        summary = json.loads(out.read())
    return summary, wall, None if peak is None else peak / 1024


def measure(
    bootstrap: str, server_url: str, rows: int, *, batch_size: int | None = None
) -> dict[str, Any]:
    """Fill a register of ``rows`` rows and snapshot it; the figures of the run.

    ``batch_size`` replaces the reference file's (which the figure is of by default).
    """
    import asyncio

    url, fill_s = fill_register(server_url, rows)
    topic = asyncio.run(
        create_topic(bootstrap, f"bench.snapshot.{uuid.uuid4().hex[:8]}", PARTITIONS)
    )
    asyncio.run(ensure_topics(bootstrap, {topic: PARTITIONS}, replication_factor=1))
    with tempfile.TemporaryDirectory(prefix="spbe-bench-snapshot-") as folder:
        path = _adapter_file(Path(folder), bootstrap, url, topic, batch_size)
        summary, wall, rss = _run(path)
    if summary["published"] != rows:
        raise RuntimeError(f"the snapshot published {summary['published']} of {rows} rows")
    return {
        "rows": rows,
        "partitions": PARTITIONS,
        "batch_size": batch_size or _reference()["snapshot"]["batch_size"],
        "fill_s": round(fill_s, 2),
        "rows_per_s": summary["rate_per_s"],
        "elapsed_s": summary["elapsed_s"],
        "wall_s": round(wall, 2),
        "peak_rss_mib": None if rss is None else round(rss, 1),
    }
