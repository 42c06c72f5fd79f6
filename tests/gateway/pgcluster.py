"""A throwaway PostgreSQL cluster on loopback (tests and the benchmark), run as user postgres."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


@contextmanager
def pg_cluster() -> Iterator[str]:
    """Yield ``postgresql+psycopg://postgres@127.0.0.1:PORT`` of a fresh cluster; stop it after."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresMissing(
            "PostgreSQL server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): run "
            "'make test' as root, or 'apt-get install postgresql'"
        )
    bindir = Path(found[-1]).parent
    workdir = tempfile.mkdtemp(prefix="tvpay-pg-")
    shutil.chown(workdir, "postgres", "postgres")
    data = os.path.join(workdir, "data")
    port = _free_port()
    _as_postgres(str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c max_connections=200"
    pg_ctl = str(bindir / "pg_ctl")
    _as_postgres(pg_ctl, "-D", data, "-o", options, "-w", "-l", f"{workdir}/log", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        _as_postgres(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)
