"""A throw-away PostgreSQL server on 127.0.0.1 for tests (Debian's server binaries).

``postgres_server()`` runs initdb in a fresh folder, starts the server on a free port
listening on 127.0.0.1 only, yields its URL and stops it with ``-m immediate``. Tests that
use it are marked ``postgres`` and skip when the binaries or psycopg are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields ``postgres://postgres@127.0.0.1:PORT/postgres``."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binary at {PG_BIN} (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'segflow[postgres]')")
    # pytest's tmp folders are private to root; the server user needs its own folder.
    root = Path(tempfile.mkdtemp(prefix="segflow-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        prefix = ["runuser", "-u", "postgres", "--"]
        for p in (root, sock):
            shutil.chown(p, "postgres")
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True)

    run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
