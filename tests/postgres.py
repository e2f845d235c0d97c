"""A throwaway PostgreSQL server for tests: Debian's postgresql, on 127.0.0.1, gone afterwards.

    with running_server() as url:            # postgresql+psycopg://postgres@127.0.0.1:PORT
        fresh_database(url)                  # one new database per test: no test sees another's rows
        with stopped(url): ...               # the server down for a while, then back

As root (CI), the server runs as the ``postgres`` user, in a folder of its own
under /tmp (pytest's folders are private to root).
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

import sqlalchemy as sa


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{part}'" for part in command)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server() -> Iterator[str | None]:
    """A new server; yields its URL, or None when PostgreSQL is not installed."""
    binaries = _binaries()
    if binaries is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="digit_zoo_postgres_"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    subprocess.run(
        _as_postgres([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = _as_postgres(
        [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "start", "-w"]
    )
    subprocess.run(start, check=True, capture_output=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    _controls[url] = (start, _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"]))
    try:
        yield url
    finally:
        _controls.pop(url, None)
        subprocess.run(
            _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate"]), capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


_controls: dict[str, tuple[list[str], list[str]]] = {}  # server URL → (its start, its stop command)


@contextmanager
def stopped(server_url: str) -> Iterator[None]:
    """The server stopped (as a crash or a maintenance would), then started again on the same port."""
    start, stop = _controls[server_url]
    subprocess.run(stop, check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(start, check=True, capture_output=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server: its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server_url}/{name}"
