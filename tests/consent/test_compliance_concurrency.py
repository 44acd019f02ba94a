"""The summary's running counts under concurrent consent writes for overlapping subjects (both
back-ends, in process through `Runtime.consent`): they equal a count made afresh from every
subject's state, and no writer deadlocks on them."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from consentry.operations import summary
from consentry.runtime import Runtime
from tests.consent.test_concurrency import THREADS, change, new_subject, runtime

__all__ = ["runtime"]
SUBJECTS = 6
STEPS = 30


def test_counts_stay_exact_under_concurrent_writers(runtime: Runtime) -> None:
    refs = [new_subject(runtime, f"tally{n}") for n in range(SUBJECTS)]

    def work(thread: int) -> None:
        for step in range(STEPS):
            change(runtime, refs[(thread + step) % SUBJECTS], thread, step)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))

    body = summary.summary(
        runtime.store, runtime.purposes, None, None, daily=False, rotation_days=90
    )
    coverage: Counter[tuple[str, str]] = Counter()
    statuses: Counter[str] = Counter()
    with runtime.store.read() as conn:
        for ref in refs:
            assert ref.subject_id is not None
            state = runtime.consent.state(conn, ref.subject_id)
            for key, current in state.purposes.items():
                coverage[(key, current.state.value)] += 1
            statuses[runtime.consent.compliance(conn, ref.subject_id).status.value] += 1
    for key, counts in body["coverage"].items():
        for state in ("granted", "denied", "withdrawn"):
            assert counts[state] == coverage[(key, state)], (key, state)
        assert counts["expired"] == 0
        assert sum(counts.values()) == SUBJECTS
    assert {k: n for k, n in body["status_counts"].items() if n} == dict(statuses)
