"""A `consentry serve` process killed while the batcher sends, and started again on the same
port and data: every event the batcher accepted is stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx2 as httpx
import pytest

from consentry.client import Client, Retry, identity
from tests.client.conftest import NOTICE, page_view, person, prepare, stored_ids
from tests.conftest import ADMIN_KEY, BACKENDS, MASTER_KEY, fresh_pg_database
from tests.servers import free_port

EVENTS = 2000


class Watch(httpx.BaseTransport):
    """The real network, telling when a batch of events is on its way (sent, unanswered)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.sending = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sending.set()
        try:
            return self._inner.handle_request(request)
        finally:
            self.sending.clear()

    def close(self) -> None:
        self._inner.close()


def start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    consentry = Path(sys.executable).parent / "consentry"
    proc = subprocess.Popen(
        [str(consentry), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            assert proc.poll() is None, "the server ended before it served"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = os.environ | {
        "CONSENTRY_DATA_DIR": str(tmp_path / "data"),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_ADMIN_KEY": ADMIN_KEY,
        "CONSENTRY_DSR_POLL_SECONDS": "0",
    }
    if backend == "postgresql":
        env["CONSENTRY_DB"] = fresh_pg_database(request.getfixturevalue("pg_url"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    servers = [start(port, env)]
    try:
        watch = Watch()
        with (
            Client(url, ADMIN_KEY, timeout=10) as client,
            Client(url, ADMIN_KEY, timeout=10, transport=watch) as sender,
        ):
            prepare(client)
            email = person()
            client.consents.grant(identity("email", email), ["analytics"], notice=NOTICE)
            # Enough patience for a restart (some 5 s here), in quick steps.
            patient = Retry(attempts=80, base_seconds=0.05, max_delay_seconds=0.25)
            ids: list[str] = []
            with sender.events.batcher(max_events=250, max_seconds=0.05, retry=patient) as b:

                def add_all() -> None:
                    for n in range(EVENTS):
                        ids.append(b.add(page_view(email, n)))

                adder = threading.Thread(target=add_all)
                adder.start()
                # Kill the server (no clean shutdown) while a batch is on the wire.
                while b.batches < 2:
                    time.sleep(0.005)
                assert watch.sending.wait(timeout=30)
                servers[0].send_signal(signal.SIGKILL)
                servers[0].wait(timeout=30)
                servers.append(start(port, env))
                adder.join()
            assert len(ids) == EVENTS
            assert b.retries >= 1
            assert b.refused == []
            assert b.accepted == EVENTS
            stored = stored_ids(client)
            assert len(stored) == EVENTS
            assert sorted(stored) == sorted(ids)
    finally:
        for proc in servers:
            stop(proc)
