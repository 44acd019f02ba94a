"""The bench's stream section (bench/stream.py): one replica on a broker of its own against a
transactional copy of the same records, with its targets; skipped, with the reason, where no
broker can start."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import text

from consentry.bench import harness
from consentry.bench import stream as stream_section
from consentry.bench.data import World, build, make_settings


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build(30, make_settings(tmp_path / "bench"))
    try:
        yield built
    finally:
        built.runtime.close()


@pytest.mark.kafka
def test_the_section_runs_a_replica_beside_a_transactional_copy(world: World) -> None:
    figures = stream_section.stream(world, 1_000, 1.0)
    assert figures["events_per_s"] > 0
    assert figures["baseline_events_per_s"] > 0
    ratio = figures["baseline_events_per_s"] / figures["events_per_s"]
    assert figures["overhead_ratio"] == pytest.approx(ratio, abs=0.01)
    assert figures["batch"] == stream_section.BATCH
    assert figures["kafka_commit_p50_ms"] > 0
    # The paced records were all settled, each timed from its produce to its Kafka commit.
    paced = figures["events_per_s"] * stream_section.LOAD_SHARE
    assert abs(figures["e2e_settled"] - paced) <= 1
    assert figures["e2e_p99_ms"] >= figures["e2e_p50_ms"] > 0
    # The replica ran the pipeline on the bench's store: the accepted events are stored.
    with world.runtime.store.read() as conn:
        stored = conn.execute(text("SELECT count(*) FROM events WHERE event_id LIKE 'st-%'"))
        assert 0 < stored.scalar_one() <= stream_section.WARMUP + 1_000


def test_without_java_the_section_says_why(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_section.shutil, "which", lambda name: None)
    figures = stream_section.stream(world, 1_000, 1.0)
    assert figures == {"skipped": "java not found: the Kafka broker needs Java 17 or later"}
    # No verdict for a section that did not run; the table shows the reason.
    assert not [k for k in harness.verdicts({"stream": figures}) if k.startswith("stream.")]
    out = io.StringIO()
    harness.show({"stream": figures}, Console(file=out, width=200))
    assert "java not found" in out.getvalue()


def test_without_the_jars_the_section_says_to_fetch_them(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/kafka finds its jars under XDG_CACHE_HOME: an empty one holds none.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert stream_section.stream(world, 1_000, 1.0) == {
        "skipped": "the Kafka jars are not fetched: run `make kafka`"
    }


def test_the_stream_targets_are_issue_20s() -> None:
    results = {"stream": {"events_per_s": 20_000, "e2e_p99_ms": 500, "overhead_ratio": 3}}
    assert harness.verdicts(results) == {
        "stream.events_per_s": True,
        "stream.e2e_p99_ms": False,
    }
    assert "stream" in harness.SECTIONS
