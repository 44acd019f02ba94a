"""The consistency rule in one place (ConsentCache.for_commit): states at the version read
inside the write transaction, which no withdrawal can pass before it commits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from consentry.consent import notices
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from tests.consent.helpers import CONSENT_PURPOSES

ACTOR = "commit-test"


@pytest.fixture
def pair(settings: Settings) -> Iterator[tuple[Runtime, Runtime]]:
    """Two processes' runtimes over one database."""
    a, b = Runtime(settings), Runtime(settings)
    try:
        with a.store.write() as conn:
            notices.publish(
                conn, a.purposes, "privacy", "1", "Notice.", list(CONSENT_PURPOSES), actor=ACTOR
            )
        yield a, b
    finally:
        a.close()
        b.close()


def granted(rt: Runtime, name: str) -> SubjectRef:
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, f"{name}@example.com"),))
    write = ConsentWrite(
        ref=ref, purposes={"analytics": "granted"}, source="web", notice=("privacy", "1")
    )
    return SubjectRef(subject_id=rt.consent.record(write, actor=ACTOR).state.subject_id)


def test_states_are_those_of_the_version_read_in_the_transaction(
    pair: tuple[Runtime, Runtime],
) -> None:
    a, b = pair
    ref = granted(a, "cora")
    subject_id = str(ref.subject_id)
    with b.store.read() as conn:
        assert b.consent.cache.fresh(conn, subject_id).purposes["analytics"].state == "granted"
    # Withdrawn in the other process: b's cache still holds the grant.
    version = a.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor=ACTOR).state.version
    held = b.consent.cache.get(subject_id)
    assert held is not None
    assert held.purposes["analytics"].state == "granted"
    with b.store.write() as conn:
        states = b.consent.cache.for_commit(conn, [subject_id, "sub_unknown", subject_id])
        # Read inside a write that may still roll back: not cached yet.
        assert b.consent.cache.get(subject_id) is held
    # Unknown subjects are absent; each known one is decided at the version just read.
    assert list(states) == [subject_id]
    assert states[subject_id].version == version
    assert states[subject_id].purposes["analytics"].state == "withdrawn"
    # Once committed, the state read is cached (the cache still warms).
    assert b.consent.cache.get(subject_id) == states[subject_id]


def test_no_withdrawal_commits_between_the_read_and_the_commit(
    pair: tuple[Runtime, Runtime], backend: str
) -> None:
    """PostgreSQL: the versions are read FOR SHARE, so the withdrawal waits for the batch's
    commit. On SQLite any open write transaction holds the one writer lock, so a withdrawal
    waits whatever for_commit reads: the test could not fail there."""
    if backend != "postgresql":
        pytest.skip("share locks: PostgreSQL only (SQLite writers take turns)")
    a, b = pair
    ref = granted(a, "dora")
    subject_id = str(ref.subject_id)
    done = threading.Event()

    def withdraw() -> None:
        a.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor=ACTOR)
        done.set()

    with b.store.write() as conn:
        states = b.consent.cache.for_commit(conn, [subject_id])
        assert states[subject_id].purposes["analytics"].state == "granted"
        writer = threading.Thread(target=withdraw)
        writer.start()
        # The withdrawal waits for this transaction: what it decided still holds at commit.
        assert not done.wait(1.0)
    assert done.wait(30)
    writer.join()
    with b.store.read() as conn:
        assert b.consent.cache.fresh(conn, subject_id).purposes["analytics"].state == "withdrawn"
