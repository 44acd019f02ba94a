"""A throwaway PostgreSQL cluster on a loopback port, for the test suite."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], as_postgres: bool) -> None:
    if as_postgres:
        # initdb refuses to run as root: run the server as the postgres user.
        command = " ".join(f"'{a}'" for a in args)
        args = ["su", "postgres", "-s", "/bin/sh", "-c", command]
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster with trust auth on 127.0.0.1; yield its base URL; stop and delete it."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="consentry-pg-"))
    data = root / "data"
    if as_postgres:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    try:
        _run(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            as_postgres,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run(
            [pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start"],
            as_postgres,
        )
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}"
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], as_postgres)
    finally:
        shutil.rmtree(root, ignore_errors=True)
