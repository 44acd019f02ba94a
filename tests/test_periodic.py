"""The background thread: work repeats every interval, a failed pass is logged by type only
and the next one runs, stop() ends it and start() runs it again, interval 0 starts nothing."""

from __future__ import annotations

import logging
import threading

import pytest

from consentry.periodic import Periodic


def test_a_failed_pass_is_logged_by_type_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes: list[int] = []
    twice = threading.Event()

    def work() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise ValueError("ana@example.com")
        if len(passes) >= 3:
            twice.set()

    periodic = Periodic("test-periodic", 0.01, work)
    with caplog.at_level(logging.ERROR, logger="consentry.periodic"):
        periodic.start()
        assert twice.wait(5)
        periodic.stop()
    assert "test-periodic: a pass failed: ValueError" in caplog.text
    assert "ana@example.com" not in caplog.text
    stopped_at = len(passes)
    assert not any(t.name == "test-periodic" for t in threading.enumerate())
    twice.clear()
    periodic.start()  # again after a stop
    assert twice.wait(5)
    periodic.stop()
    assert len(passes) > stopped_at


def test_interval_zero_starts_no_thread() -> None:
    periodic = Periodic("test-idle", 0, lambda: None)
    periodic.start()
    assert not any(t.name == "test-idle" for t in threading.enumerate())
    periodic.stop()
