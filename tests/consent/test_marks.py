"""Marks on a subject (consent/marks.py) reach the consent cache once their transaction has
committed, never before and never from a rollback; data-subject requests refresh nothing
themselves."""

from __future__ import annotations

import pytest

from consentry.consent import marks
from consentry.dsr.models import Level, RequestType, Verification
from consentry.dsr.requests import NewRequest
from consentry.runtime import Runtime
from consentry.subjects.models import Identity, IdentityType, Jurisdiction, SubjectRef

ACTOR = "marks-test"


def known(rt: Runtime, name: str) -> str:
    """A subject whose state this process's cache holds."""
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, f"{name}@example.com"),))
    with rt.store.write() as conn:
        subject_id = rt.subjects.resolve(conn, ref, actor=ACTOR).subject.subject_id
    with rt.store.read() as conn:
        assert not rt.consent.cache.fresh(conn, subject_id).restricted
    return subject_id


def test_a_mark_is_cached_once_committed(runtime: Runtime) -> None:
    subject_id = known(runtime, "mila")
    with runtime.store.write() as conn:
        marks.restricted(conn, runtime.consent, subject_id, True)
        marks.objections(conn, runtime.consent, subject_id, objected=["marketing"], held=[])
        # Not yet committed: nothing is cached.
        assert not runtime.consent.cache.get(subject_id).restricted  # type: ignore[union-attr]
    cached = runtime.consent.cache.get(subject_id)
    assert cached is not None
    assert cached.restricted
    assert "marketing" in cached.objected


def test_a_rolled_back_mark_is_never_cached(runtime: Runtime) -> None:
    subject_id = known(runtime, "nils")
    before = runtime.consent.cache.get(subject_id)

    def limit_then_fail() -> None:
        with runtime.store.write() as conn:
            marks.sensitive_limited(conn, runtime.consent, subject_id)
            raise RuntimeError("refused after the mark")

    with pytest.raises(RuntimeError, match="refused after the mark"):
        limit_then_fail()
    assert runtime.consent.cache.get(subject_id) is before
    with runtime.store.read() as conn:
        assert not runtime.consent.cache.fresh(conn, subject_id).sensitive_limited


def test_a_request_s_mark_is_cached_without_a_refresh_by_dsr(runtime: Runtime) -> None:
    """A verified restriction and a limit: this process's cache holds the marks as soon as
    the calls return (checks read it without a query on SQLite: check_held)."""
    subject_id = known(runtime, "olga")
    for kind in (RequestType.RESTRICTION, RequestType.LIMIT):
        runtime.requests.create(
            NewRequest(
                type=kind,
                ref=SubjectRef(subject_id=subject_id),
                jurisdiction=Jurisdiction.EU,
                verification=Verification("test", Level.HIGH),
            ),
            actor=ACTOR,
        )
    cached = runtime.consent.cache.get(subject_id)
    assert cached is not None
    assert cached.restricted
    assert cached.sensitive_limited
