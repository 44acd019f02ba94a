"""`consentry demo` as a newcomer runs it: its own `consentry serve` on SQLite, its receivers
on loopback, 20 seconds of traffic; the compliance summary of the store it leaves shows
refusals, blocked transfers, a completed erasure and nothing processed without consent. Ctrl-C
and a kill stop it with its server."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from consentry.client import Client
from consentry.demo.server import MARKER, DemoError, prepare
from tests.servers import free_port, serving

CONSENTRY = str(Path(sys.executable).parent / "consentry")
# The refusals the demo's traffic is built to meet; any other code is a mistake in it.
EXPECTED_CODES = {"no_consent", "unknown_field", "subject_erased", "eprivacy_consent_required"}


def environment() -> dict[str, str]:
    """The caller's environment without Consentry's settings: the demo sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}


def port_of(output: str) -> int:
    found = re.search(r"Consentry on http://127\.0\.0\.1:(\d+)", output)
    assert found, output
    return int(found.group(1))


def assert_server_gone(port: int) -> None:
    """Nothing listens on the port and no `consentry serve --port PORT` process is left."""
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo's server still listens"
    needle = f"serve\0--port\0{port}\0".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert needle not in cmdline, f"process {proc.name} is the demo's server"


def test_twenty_seconds_of_the_demo(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    started = time.monotonic()
    command = [CONSENTRY, "demo", "--duration", "20", "--rate", "100", "--seed", "7"]
    done = subprocess.run(
        [*command, "--data-dir", str(data), "--no-stay"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert time.monotonic() - started >= 20
    port = port_of(out)
    assert_server_gone(port)
    # Not a terminal: plain progress lines, then the summary, the dashboard, a person's link.
    assert re.search(r"^\[\s*\d+ s\] streaming: [\d,]+ events sent", out, flags=re.MULTILINE)
    assert "Incident recorded: inc_" in out
    assert f"Dashboard: http://127.0.0.1:{port}/dashboard" in out
    assert re.search(rf"^  http://127\.0\.0\.1:{port}/enrol\?token=\S+$", out, re.MULTILINE)
    assert re.search(r"^  processed_without_consent:\s+0$", out, flags=re.MULTILINE)
    assert not (tmp_path / "consentry-data").exists()

    # The API's own account, from the store the demo left behind.
    key = (data / "admin.key").read_text().strip()
    port = free_port()
    env = environment() | {"CONSENTRY_DATA_DIR": str(data), "CONSENTRY_DELIVERY_WORKER": "false"}
    with serving(port, env), Client(f"http://127.0.0.1:{port}", key) as client:
        summary = client.compliance.summary()
    refused = summary["events"]["rejected"]
    assert sum(refused.values()) > 0
    assert set(refused) <= EXPECTED_CODES, refused
    assert summary["events"]["accepted"] > 0
    assert summary["deliveries"]["refused"]["transfer_blocked"] > 0
    assert summary["requests"]["completed"]["erasure"] >= 1
    assert summary["processed_without_consent"] == 0
    assert summary["incidents"]["open"] == 1


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_an_interrupted_demo_leaves_no_process_behind(tmp_path: Path, signum: int) -> None:
    proc = subprocess.Popen(
        [CONSENTRY, "demo", "--duration", "600", "--rate", "50", "--data-dir", "d", "--no-stay"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal: a suite started in the background (`make test &`) ignores SIGINT,
        # and a child would inherit that.
        preexec_fn=_interruptible,  # noqa: PLW1509 - no thread runs between fork and exec here
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen = ""
    try:
        deadline = time.monotonic() + 90
        while "Streaming" not in seen:
            assert time.monotonic() < deadline, seen
            seen += lines.get(timeout=90)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert_server_gone(port_of(seen))


def test_the_data_directory_is_the_demos_own(tmp_path: Path) -> None:
    store = tmp_path / "consentry-data"
    store.mkdir()
    (store / "consentry.db").write_text("a real store")
    with pytest.raises(DemoError, match="did not make"):
        prepare(store)
    assert (store / "consentry.db").exists()
    earlier = tmp_path / "demo"
    prepare(earlier)
    (earlier / "consentry.db").write_text("an earlier demo")
    prepare(earlier)
    assert sorted(p.name for p in earlier.iterdir()) == [MARKER]
