"""`consentry serve` as a real process on a free loopback port, for tests that speak HTTP to it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    port: int,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    cwd: Path | None = None,
    start_seconds: float = 60,
    stop_seconds: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `consentry serve` on `port`, wait until /healthz answers, stop it afterwards."""
    consentry = Path(sys.executable).parent / "consentry"
    proc = subprocess.Popen(
        [str(consentry), "serve", "--port", str(port), "--workers", str(workers)],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, "the server ended before it served"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=stop_seconds)
