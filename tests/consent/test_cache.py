"""consent/cache.py: the newest version wins whatever the order of puts; `fresh` reloads only
when the subject row is ahead; `rebuild` folds the whole ledger into what the writes cached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consentry.consent import ledger, notices
from consentry.consent.cache import ConsentCache
from consentry.consent.models import SubjectConsent
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise


def person(name: str) -> SubjectRef:
    return SubjectRef(identities=(normalise(IdentityType.EMAIL, f"{name}@example.com"),))


def grant(rt: Runtime, name: str, *purposes: str) -> SubjectConsent:
    write = ConsentWrite(
        ref=person(name),
        purposes=dict.fromkeys(purposes, "granted"),
        source="web",
        notice=("main", "1"),
    )
    return rt.consent.record(write, actor="test").state


@pytest.fixture
def published(runtime: Runtime) -> Runtime:
    with runtime.store.write() as conn:
        notices.publish(
            conn, runtime.purposes, "main", "1", "N.", ["analytics", "marketing"], actor="t"
        )
    return runtime


@pytest.fixture
def other(settings: Settings, published: Runtime) -> Iterator[Runtime]:
    """A second process on the same database, with a cache of its own."""
    rt = Runtime(settings)
    try:
        yield rt
    finally:
        rt.close()


@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(versions=st.lists(st.integers(0, 1000), min_size=1, max_size=12, unique=True))
def test_the_newest_version_put_is_kept_whatever_the_order(
    sqlite_runtime: Runtime, versions: list[int]
) -> None:
    # A new cache per example; the store is only read after a commit, never here.
    cache = ConsentCache(sqlite_runtime.store)
    for v in versions:
        cache.put(SubjectConsent(subject_id="sub_a", version=v, jurisdiction=f"v{v}"))
    held = cache.get("sub_a")
    assert held is not None
    assert (held.version, held.jurisdiction) == (max(versions), f"v{max(versions)}")
    assert cache.get("sub_b") is None
    assert len(cache) == 1


def test_fresh_reloads_only_when_the_row_is_ahead(published: Runtime, other: Runtime) -> None:
    mine = published.consent_cache
    state = grant(published, "cara", "analytics")
    sid = state.subject_id
    with published.store.read() as conn:
        assert mine.fresh(conn, sid) is mine.get(sid)
    other.consent.withdraw(person("cara"), ["analytics"], "web", gpc=False, actor="test")
    # This process's cache lags the other process's write until it asks the row.
    assert mine.get(sid) == state
    with published.store.read() as conn:
        unkept = mine.fresh(conn, sid, remember=False)
        assert unkept.version > state.version
        assert mine.get(sid) == state
        reloaded = mine.fresh(conn, sid)
        assert reloaded == unkept == ledger.load(conn, sid)
        assert mine.get(sid) == reloaded
        # No subject row: nothing to load, an empty state.
        assert mine.fresh(conn, "sub_nobody") == SubjectConsent(subject_id="sub_nobody")


def test_for_commit_answers_known_subjects_at_their_current_version(
    published: Runtime, other: Runtime
) -> None:
    ana = grant(published, "ana", "analytics").subject_id
    bob = grant(published, "bob", "marketing").subject_id
    other.consent.withdraw(person("bob"), ["marketing"], "web", gpc=False, actor="test")
    cache = published.consent_cache
    with published.store.write() as conn:
        states = cache.for_commit(conn, [bob, "sub_nobody", ana, bob])
        assert set(states) == {ana, bob}
        assert states[bob] == ledger.load(conn, bob)
        assert states[ana] == ledger.load(conn, ana)


def test_a_rebuild_holds_what_the_writes_cached(published: Runtime, other: Runtime) -> None:
    ids = [grant(published, name, "analytics").subject_id for name in ("dan", "eve", "fay")]
    other.consent.withdraw(person("eve"), None, "web", gpc=False, actor="test")
    with published.store.read() as conn:
        expected = {s: published.consent_cache.fresh(conn, s) for s in ids}
        rebuilt = ConsentCache(published.store)
        # What was held before the rebuild does not survive it.
        rebuilt.put(SubjectConsent(subject_id="sub_gone", version=1))
        assert rebuilt.rebuild(conn) == len(ids)
    assert {s: rebuilt.get(s) for s in ids} == expected
    assert rebuilt.get("sub_gone") is None


def test_new_subjects_are_read_once_and_cached_once_committed(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest batch's new people: their states are read in the transaction and, once it
    has committed at those versions, cached as read (no second read per subject)."""
    loads: list[str] = []
    real = ledger.load

    def counting(conn: object, subject_id: str) -> SubjectConsent:
        loads.append(subject_id)
        return real(conn, subject_id)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "load", counting)
    with runtime.store.write() as conn:
        ids = []
        for n in range(5):
            ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, f"new{n}@example.com"),))
            ids.append(runtime.subjects.resolve(conn, ref, actor="test").subject.subject_id)
        read = runtime.consent.cache.for_commit(conn, ids)
        assert all(runtime.consent.cache.get(s) is None for s in ids)
    assert sorted(loads) == sorted(ids)
    assert {s: runtime.consent.cache.get(s) for s in ids} == read
