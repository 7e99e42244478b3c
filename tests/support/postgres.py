"""A throwaway PostgreSQL server for the portal's tests, or the one HPC_PORTAL_TEST_DATABASE_URL
names.

The server is Debian's PostgreSQL (`postgresql` package, binaries under
/usr/lib/postgresql/<version>/bin): initdb into a temp dir, then pg_ctl start on a free port with
a Unix socket in that dir, trust auth on 127.0.0.1 only. pg_ctl refuses to run as root, so as root
the commands run as the `postgres` user (runuser), which then owns the temp dir.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "HPC_PORTAL_TEST_DATABASE_URL"
INSTALL_HINT = (
    "PostgreSQL is not installed: the portal's PostgreSQL tests need initdb and pg_ctl "
    "(Debian: apt-get install postgresql; .ci/run installs it), or set "
    f"{ENV_URL}=postgresql+psycopg://user@host:port/db to use a running server"
)


def postgres_bin() -> Path | None:
    """The directory with initdb/pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh server (or of HPC_PORTAL_TEST_DATABASE_URL); stop and
    remove it afterwards."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="portal-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = {"check": True, "capture_output": True, "text": True, "cwd": root}
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "portal", "-A", "trust", "-E", "UTF8"]),
        **run,  # type: ignore[call-overload]
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        **run,  # type: ignore[call-overload]
    )
    try:
        yield f"postgresql+psycopg://portal@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server (each test gets its own schema), returned as a URL."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
