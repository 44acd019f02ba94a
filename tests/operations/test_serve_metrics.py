"""`/metrics` of a real `consentry serve --workers 2` (both back-ends): requests spread over
both worker processes on fresh connections, and one scrape counts them all (each worker's
own counts, read from its file, add up to the scrape's), in a directory of the run's own that
another server's run on the same data directory keeps. A loopback client scrapes without a
key unless a proxy forwarded it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.operations.scrape import samples, value
from tests.servers import free_port, serving

BURST = 8
MAX_REQUESTS = 2_000
LATENCY = "consentry_request_duration_seconds_count"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _healthz_per_worker(directory: Path) -> dict[str, float]:
    """Each worker's own count of GET /healthz, from its histogram file."""
    counts = {}
    for path in directory.glob("histogram_*.db"):
        metrics = MultiProcessCollector.merge([str(path)], accumulate=True)
        counts[path.stem.split("_")[1]] = sum(
            s.value
            for m in metrics
            for s in m.samples
            if s.name == LATENCY and s.labels.get("route") == "/healthz"
        )
    return counts


def _served(directory: Path) -> dict[str, float]:
    return {pid: n for pid, n in _healthz_per_worker(directory).items() if n}


def test_a_scrape_of_two_workers_sums_both(settings: Settings) -> None:
    port = free_port()
    data = settings.data_dir
    env = os.environ | {
        "CONSENTRY_DATA_DIR": str(data),
        "CONSENTRY_DB": settings.db,
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_ADMIN_KEY": ADMIN_KEY,
        "CONSENTRY_DSR_POLL_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Each run counts in a directory of its own: one of a run that has ended is removed (its
    # counts would be summed in were its pid used again), one of another server still running
    # on the same data directory (this process stands in for it) is left alone.
    ended = subprocess.Popen(["true"])
    ended.wait()
    for run in (ended.pid, os.getpid()):
        (data / "metrics" / str(run)).mkdir(parents=True)
        (data / "metrics" / str(run) / "counter_1.db").write_bytes(b"left over")
    other = data / "metrics" / str(os.getpid()) / "counter_1.db"
    base = f"http://127.0.0.1:{port}"
    with serving(port, env, workers=2, stop_seconds=30) as server:
        assert other.exists()
        assert not (data / "metrics" / str(ended.pid)).exists()
        directory = data / "metrics" / str(server.pid)
        assert directory.is_dir()
        status, first = _get(f"{base}/metrics")
        assert status == 200
        before = value(
            samples(first.decode()), LATENCY, method="GET", route="/healthz", status="200"
        )
        # Fresh connections, a burst at a time, until both workers have served some (the
        # kernel hands each connection to whichever worker accepts first).
        sent = 0
        with ThreadPoolExecutor(BURST) as pool:
            while sent < MAX_REQUESTS:
                codes = list(pool.map(lambda _: _get(f"{base}/healthz")[0], range(BURST)))
                assert codes == [200] * BURST
                sent += BURST
                if sent >= BURST * 4 and len(_served(directory)) == 2:
                    break
        status, body = _get(f"{base}/metrics")
        assert status == 200
        scraped = samples(body.decode())
        total = value(scraped, LATENCY, method="GET", route="/healthz", status="200")
        per_worker = _healthz_per_worker(directory)
        # Through a proxy on the same host, loopback is no longer proof of who asks.
        forwarded = _get(f"{base}/metrics", {"X-Forwarded-For": "203.0.113.9"})
        assert forwarded[0] == 401
        assert json.loads(forwarded[1])["code"] == "unauthenticated"
        keyed = _get(f"{base}/metrics", {"Authorization": f"Bearer {ADMIN_KEY}"})
        assert keyed[0] == 200
    assert not directory.exists()  # removed when the run ended
    assert other.exists()
    assert total - before == sent
    assert len({pid: n for pid, n in per_worker.items() if n}) == 2, per_worker
    assert sum(per_worker.values()) == total
    # The figures read from the database are in the scrape once, not once per worker.
    assert sum(1 for name, _ in scraped if name == "consentry_audit_entries") == 1


@pytest.fixture(autouse=True)
def _no_inherited_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
