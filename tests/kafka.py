"""A real Apache Kafka broker (single-node KRaft, scripts/kafka) on loopback for the tests that
ask for one (a plugin of tests/conftest.py): `kafka_bootstrap`, one broker for the session of
each test process (started at its first use, stopped when the session ends), and `Broker`, a
broker of a test's own that it may stop and start again (same ports, same data)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "kafka"


class Broker:
    """`scripts/kafka up DIR` and `down DIR` for one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bootstrap = ""

    def up(self) -> str:
        """Start it (or find it running); its `host:port` once it answers clients."""
        done = subprocess.run(
            [str(SCRIPT), "up", str(self.folder)],
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/kafka up failed ({done.returncode}):\n{done.stderr[-3000:]}")
        last = done.stdout.strip().splitlines()[-1]
        self.bootstrap = last.removeprefix("bootstrap=")
        return self.bootstrap

    def down(self) -> None:
        subprocess.run([str(SCRIPT), "down", str(self.folder)], check=True, timeout=60)


@contextlib.contextmanager
def broker(folder: Path) -> Iterator[Broker]:
    """A broker of its own, with its data in `folder`, stopped when the block ends."""
    running = Broker(folder)
    running.up()
    try:
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`127.0.0.1:PORT` of this test process's broker (under xdist, one per worker: each worker
    is its own session)."""
    with broker(tmp_path_factory.mktemp("kafka")) as running:
        yield running.bootstrap
