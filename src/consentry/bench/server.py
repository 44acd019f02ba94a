"""The real server for the benchmark's HTTP sections: `consentry serve` with its workers on a
loopback port, and load sent to it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from consentry.bench import load
from consentry.bench.data import ADMIN_KEY, World

# One worker process per core of the machine the figures are for.
SERVER_WORKERS = int(os.environ.get("CONSENTRY_BENCH_WORKERS", "2"))


def listeners(port: int) -> int:
    """How many sockets listen on this TCP port (Linux: /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


class Server:
    """`consentry serve` on a free loopback port over the world's data directory."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        """The port the server listens on, once every worker does."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        settings = self.world.settings
        env = {
            **os.environ,
            "CONSENTRY_DATA_DIR": str(settings.data_dir),
            "CONSENTRY_ADMIN_KEY": ADMIN_KEY,
            "CONSENTRY_MASTER_KEY": settings.master_key,
            "CONSENTRY_LOG_LEVEL": "warning",
            "CONSENTRY_WORKERS": str(SERVER_WORKERS),
        }
        exe = Path(sys.executable).parent / "consentry"
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # Every worker listens on a socket of its own once its app has started: clients
            # connecting earlier would all land on the first one up.
            if listeners(port) >= SERVER_WORKERS:
                try:
                    httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
                    return port
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def warmup(seconds: float) -> float:
    """Seconds of load sent before counting starts: a third of the measured time, at most 2 s."""
    return min(2.0, seconds / 3)


def send(spec: load.Load) -> load.Outcome:
    """Run the load; raises RuntimeError if it failed or no request was answered."""
    outcome = load.run(spec)
    if outcome.failure is not None:
        raise RuntimeError(outcome.failure)
    if not outcome.requests:
        raise RuntimeError(f"no request to {spec.path} was answered")
    return outcome
