"""Marks on a subject (consent/marks.py) reach the consent cache once their transaction has
committed, never before and never from a rollback (of the transaction or of a savepoint);
data-subject requests refresh nothing themselves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from consentry.consent import ledger, marks
from consentry.dsr.models import Level, RequestType, Verification
from consentry.dsr.requests import NewRequest
from consentry.runtime import Runtime
from consentry.storage import consent as sql
from consentry.subjects.models import Identity, IdentityType, Jurisdiction, SubjectRef
from tests.conftest import auth

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


def assert_cache_is_the_row(rt: Runtime, subject_id: str) -> None:
    """This process's cached state is the committed row's, read now."""
    with rt.store.read() as conn:
        committed = ledger.load(conn, subject_id)
        assert sql.subject_version(conn, subject_id) == committed.version
    assert rt.consent.cache.get(subject_id) == committed


def test_a_request_that_changes_the_jurisdiction_refreshes_the_cache(runtime: Runtime) -> None:
    """The jurisdiction set on receipt takes a consent version: the cache holds it when the
    call returns, also when the request is an open one returned again (a duplicate)."""
    subject_id = known(runtime, "pia")
    for where, duplicate in ((Jurisdiction.UK, False), (Jurisdiction.US_CA, True)):
        _, again = runtime.requests.create(
            NewRequest(
                type=RequestType.ACCESS,
                ref=SubjectRef(subject_id=subject_id),
                jurisdiction=where,
            ),
            actor=ACTOR,
        )
        assert again is duplicate
        cached = runtime.consent.cache.get(subject_id)
        assert cached is not None
        assert cached.jurisdiction == where.value
        assert_cache_is_the_row(runtime, subject_id)


def test_a_subject_given_a_jurisdiction_over_http_is_cached_with_it(client: TestClient) -> None:
    """POST /v1/subjects naming a known subject and a new jurisdiction: the cache holds the
    new consent version when the call returns."""
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    subject_id = known(rt, "noor")
    answer = client.post(
        "/v1/subjects",
        json={"subject": {"subject_id": subject_id}, "jurisdiction": "US-CA"},
        headers=auth(),
    )
    assert answer.status_code == 200, answer.text
    cached = rt.consent.cache.get(subject_id)
    assert cached is not None
    assert cached.jurisdiction == "US-CA"
    assert_cache_is_the_row(rt, subject_id)


def test_a_state_read_in_a_rolled_back_write_is_never_cached(runtime: Runtime) -> None:
    """A mark, then the states read for commit in the same transaction, which rolls back; a
    mark committed later reaches the same version number: the cache holds the committed one,
    not the state read before the rollback."""
    subject_id = known(runtime, "quinn")

    def mark_read_then_fail() -> None:
        with runtime.store.write() as conn:
            marks.restricted(conn, runtime.consent, subject_id, True)
            assert runtime.consent.cache.for_commit(conn, [subject_id])[subject_id].restricted
            raise RuntimeError("refused after the read")

    with pytest.raises(RuntimeError, match="refused after the read"):
        mark_read_then_fail()
    with runtime.store.write() as conn:
        marks.sensitive_limited(conn, runtime.consent, subject_id)
    assert_cache_is_the_row(runtime, subject_id)
    cached = runtime.consent.cache.get(subject_id)
    assert cached is not None
    assert cached.sensitive_limited
    assert not cached.restricted


def test_a_mark_in_a_rolled_back_savepoint_is_never_cached(runtime: Runtime) -> None:
    """The runner's failure path (dsr/runner.py): a step marks the subject and reads its
    state, then fails and rolls back to its savepoint; the outer transaction commits."""
    subject_id = known(runtime, "rhea")

    def step(conn: Connection) -> None:
        with conn.begin_nested():
            marks.restricted(conn, runtime.consent, subject_id, True)
            assert runtime.consent.cache.for_commit(conn, [subject_id])[subject_id].restricted
            raise RuntimeError("the step failed")

    with runtime.store.write() as conn, pytest.raises(RuntimeError, match="the step failed"):
        step(conn)
    assert_cache_is_the_row(runtime, subject_id)
    cached = runtime.consent.cache.get(subject_id)
    assert cached is not None
    assert not cached.restricted
