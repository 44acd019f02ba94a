"""Real servers on free loopback ports for tests: `consentry serve` as a process, or
`create_app(settings)` under uvicorn in a thread of the test process, for tests that speak HTTP
(the SMTP server is in tests/mailserver.py)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings


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
    args: Sequence[str] = (),
    tls: ssl.SSLContext | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `consentry serve` on `port` (with `args`), wait until /healthz answers (over
    https, verified with `tls`, when given), stop it afterwards."""
    consentry = Path(sys.executable).parent / "consentry"
    health = f"{'https' if tls else 'http'}://127.0.0.1:{port}/healthz"
    proc = subprocess.Popen(
        [str(consentry), "serve", "--port", str(port), "--workers", str(workers), *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2, context=tls):
                    break
            except OSError:
                assert proc.poll() is None, "the server ended before it served"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=stop_seconds)


@dataclass(frozen=True)
class LiveServer:
    """A gateway answering on `url` (http://127.0.0.1:PORT, no trailing slash)."""

    url: str
    settings: Settings
    app: FastAPI

    @property
    def runtime(self) -> Runtime:
        """The services the running app opened (storage, keys), for arranging data directly."""
        runtime: Runtime = self.app.state.runtime
        return runtime


@contextlib.contextmanager
def serving_app(settings: Settings, *, start_seconds: float = 30) -> Iterator[LiveServer]:
    """`create_app(settings)` under uvicorn on a free loopback port, in a thread; its lifespan
    has run (storage, keys) when this yields, and has shut down when it returns."""
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + start_seconds
        while not server.started:
            assert thread.is_alive(), "the server ended before it served"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=start_seconds)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"
