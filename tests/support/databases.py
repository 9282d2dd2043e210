"""Private PostgreSQL and MariaDB servers for tests, from the Debian packages, on loopback.

Each server lives in its own temporary directory on a free port and is stopped at the
end of the test session. PostgreSQL refuses to run as root, so when the tests run as
root its processes run as the ``postgres`` system user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port_block

__all__ = ["LOGICAL_REPLICATION", "mariadb_server", "postgres_server"]

INSTALL_HINT = "install it with: apt-get install postgresql mariadb-server (see .ci/run)"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(f"PostgreSQL server binaries (initdb) not found; {INSTALL_HINT}")
    return Path(initdb).parent


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


#: Server settings for logical decoding (Debezium's pgoutput plugin, the bench's peers).
LOGICAL_REPLICATION = {"wal_level": "logical", "max_replication_slots": "8", "max_wal_senders": "8"}


@contextmanager
def postgres_server(base: Path, settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start PostgreSQL in ``base``; yield a SQLAlchemy URL for database ``spbe``.

    ``settings`` are extra server settings (``-c name=value``), e.g.
    :data:`LOGICAL_REPLICATION`. The user ``spbe`` is the cluster's superuser, so it may
    also open replication connections (``initdb --auth=trust`` lets it in from loopback).
    """
    bin_dir = _postgres_bin()
    cleanup = False
    if os.geteuid() == 0:
        # pytest's temporary directories are private to root, and the postgres user must
        # reach its data directory: use a directory of its own under the system temp dir.
        base = Path(tempfile.mkdtemp(prefix="spbe-test-postgres-"))
        os.chown(base, pwd.getpwnam("postgres").pw_uid, -1)
        cleanup = True
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    port = free_port_block(1)
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "spbe", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "log"),
                "-w",
                "-o",
                options,
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "spbe", "spbe"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://spbe@127.0.0.1:{port}/spbe"
    finally:
        subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        if cleanup:
            shutil.rmtree(base, ignore_errors=True)


@contextmanager
def mariadb_server(base: Path) -> Iterator[str]:
    """Start MariaDB in ``base``; yield a SQLAlchemy URL for database ``spbe``."""
    server = shutil.which("mariadbd") or shutil.which("mysqld")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if server is None or install is None or client is None:
        raise RuntimeError(f"MariaDB server binaries not found; {INSTALL_HINT}")
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    socket_path = base / "mysqld.sock"
    port = free_port_block(1)
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    with (base / "log").open("wb") as log:
        process = subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                f"--socket={socket_path}",
                f"--pid-file={base / 'mysqld.pid'}",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=64M",
                "--transaction-isolation=READ-COMMITTED",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        sql = (
            "CREATE DATABASE spbe CHARACTER SET utf8mb4; "
            "CREATE USER 'spbe'@'%' IDENTIFIED BY 'spbe'; "
            "GRANT ALL ON *.* TO 'spbe'@'%';"
        )
        deadline = time.monotonic() + 120
        while True:
            done = subprocess.run(
                [client, "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-e", sql],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "MariaDB did not start:\n" + (base / "log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.5)
        yield f"mysql+pymysql://spbe:spbe@127.0.0.1:{port}/spbe?charset=utf8mb4"
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
