"""Concurrent consent writes for one subject, a restart, and the cache of a second worker.

In process, through `Runtime.consent`, on both back-ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from consentry.consent import ledger, notices
from consentry.consent.models import Reason, State
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from tests.consent.helpers import CONSENT_PURPOSES

THREADS = 8
CHANGES = 100
ACTOR = "concurrency-test"
KEYS = ("analytics", "marketing", "location", "personalization")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    with rt.store.write() as conn:
        notices.publish(
            conn, rt.purposes, "privacy", "1", "Notice text.", list(CONSENT_PURPOSES), actor=ACTOR
        )
    yield rt
    rt.close()


def new_subject(rt: Runtime, name: str) -> SubjectRef:
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, f"{name}@example.com"),))
    with rt.store.write() as conn:
        subject_id = rt.subjects.resolve(conn, ref, actor=ACTOR).subject.subject_id
    return SubjectRef(subject_id=subject_id)


def grant(rt: Runtime, ref: SubjectRef, key: str, state: str = "granted") -> int:
    write = ConsentWrite(ref=ref, purposes={key: state}, source="web", notice=("privacy", "1"))
    return rt.consent.record(write, actor=ACTOR).state.version


def change(rt: Runtime, ref: SubjectRef, thread: int, step: int) -> int:
    """One ledger change: a grant, a denial or a withdrawal of one purpose."""
    key = KEYS[(thread + step) % len(KEYS)]
    kind = (thread * 7 + step) % 3
    if kind == 2:
        return rt.consent.withdraw(ref, [key], "app", gpc=False, actor=ACTOR).state.version
    return grant(rt, ref, key, "granted" if kind == 0 else "denied")


def test_eight_writers_for_one_subject(runtime: Runtime, settings: Settings) -> None:
    """DESIGN.md: "every change bumps the subject's version": 8 threads writing 100 changes
    each for ONE subject leave exactly 800 entries with 800 distinct versions; a restart
    (a new Runtime on the same store) rebuilds the cache and answers the same."""
    ref = new_subject(runtime, "many.writers")
    subject_id = str(ref.subject_id)
    start = threading.Barrier(THREADS)

    def work(thread: int) -> list[int]:
        start.wait()
        return [change(runtime, ref, thread, step) for step in range(CHANGES)]

    with ThreadPoolExecutor(THREADS) as pool:
        answered = [v for versions in pool.map(work, range(THREADS)) for v in versions]
    total = THREADS * CHANGES
    assert sorted(answered) == list(range(1, total + 1))
    with runtime.store.read() as conn:
        entries = ledger.history(conn, subject_id, None, after_version=0, limit=total + 10)
        state = ledger.load(conn, subject_id)
    assert len(entries) == total
    assert sorted(e.version for e in entries) == list(range(1, total + 1))
    assert state.version == total
    cached = runtime.consent_cache.get(subject_id)
    assert cached is not None
    assert cached.version == total
    last = {e.purpose: e.state for e in entries}
    assert {k: p.state for k, p in cached.purposes.items()} == last

    restarted = Runtime(settings)
    try:
        rebuilt = restarted.consent_cache.get(subject_id)
        assert rebuilt == state
        with runtime.store.read() as conn, restarted.store.read() as other:
            for key in (*KEYS, "advertising", "security"):
                before = runtime.consent.check(conn, ref, key)
                after = restarted.consent.check(other, ref, key)
                assert after == before
                assert after.version == total
                expected = last.get(key)
                if expected is State.GRANTED:
                    assert after.reason is Reason.GRANTED
                elif expected is not None:
                    assert after.reason is Reason.DENIED
    finally:
        restarted.close()


def test_a_withdrawal_is_seen_by_another_worker_at_once(
    runtime: Runtime, settings: Settings
) -> None:
    """DESIGN.md, the consistency rule: once a withdrawal has returned, a second worker whose
    cache was warm answers `denied` (the version rule); the writer's cache holds the new
    version before `withdraw` returns."""
    ref = new_subject(runtime, "two.workers")
    subject_id = str(ref.subject_id)
    grant(runtime, ref, "analytics")
    worker = Runtime(settings)
    try:
        with worker.store.read() as conn:
            warm = worker.consent.check(conn, ref, "analytics")
        assert warm.reason is Reason.GRANTED
        held = worker.consent_cache.get(subject_id)
        assert held is not None
        assert held.version == warm.version
        for round_ in range(3):
            result = runtime.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor=ACTOR)
            cached = runtime.consent_cache.get(subject_id)
            assert cached is not None
            assert cached.version == result.state.version
            assert cached.purposes["analytics"].state is State.WITHDRAWN
            with worker.store.read() as conn:
                seen = worker.consent.check(conn, ref, "analytics")
            assert (seen.allowed, seen.reason) == (False, Reason.DENIED), round_
            assert seen.version == result.state.version
            version = grant(runtime, ref, "analytics")
            # The check of the API (no transaction on SQLite) sees the grant at once too.
            fast = worker.consent.check_now(ref, "analytics")
            assert (fast.reason, fast.version) == (Reason.GRANTED, version)
            with worker.store.read() as conn:
                again = worker.consent.check(conn, ref, "analytics")
            assert (again.reason, again.version) == (Reason.GRANTED, version)
            runtime.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor=ACTOR)
            assert worker.consent.check_now(ref, "analytics").reason is Reason.DENIED
            version = grant(runtime, ref, "analytics")
    finally:
        worker.close()


def test_a_withdrawal_in_a_second_worker_reaches_the_first(
    runtime: Runtime, settings: Settings
) -> None:
    """The version rule works both ways: a subject withdrawn by another worker (a pre-emptive
    opt-out for someone this worker holds as granted) is denied here at once."""
    ref = new_subject(runtime, "both.ways")
    grant(runtime, ref, "marketing")
    other = Runtime(settings)
    try:
        other.consent.withdraw(ref, None, "email", gpc=False, actor=ACTOR)
    finally:
        other.close()
    with runtime.store.read() as conn:
        for key in CONSENT_PURPOSES:
            assert runtime.consent.check(conn, ref, key).reason is Reason.DENIED, key
