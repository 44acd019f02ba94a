"""Property tests (hypothesis): the ledger fold against a model of the calls.

In process, on SQLite: any sequence of grants, denials, withdrawals and time jumps folds to the
last decision per purpose (grants lapse after their ttl, denials never), versions strictly
increase, and the decisions over the fold are those of the model (the pure policy properties
are in test_policy.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry import clock
from consentry.consent import ledger, notices, policy
from consentry.consent.models import (
    LedgerEntry,
    Reason,
    Source,
    State,
)
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import Identity, IdentityType, SubjectRef
from tests.consent.helpers import CONSENT_PURPOSES, FakeClock

TTL_DAYS = {"analytics": 1, "marketing": 30, "location": 395, "service_delivery": 395}
KEYS = tuple(TTL_DAYS)
ACTOR = "property-test"
_people = itertools.count()

Op = tuple[str, str | timedelta | None]
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["grant", "deny", "withdraw"]), st.sampled_from(KEYS)),
        st.tuples(st.just("withdraw_all"), st.none()),
        st.tuples(
            st.just("jump"),
            st.one_of(
                st.integers(0, 24 * 500).map(lambda h: timedelta(hours=h)),
                st.sampled_from([timedelta(days=d) for d in (1, 30, 395)]),
            ),
        ),
    ),
    min_size=1,
    max_size=12,
)
FIXED = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def runtime(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A Runtime with short grant lifetimes, a notice covering every consent purpose, and a
    clock the test moves."""
    monkeypatch.setattr(clock, "now", FakeClock())
    rt = Runtime(sqlite_settings)
    with rt.store.write() as conn:
        for key, days in TTL_DAYS.items():
            purpose = rt.purposes.get(conn, key)
            rt.purposes.put(conn, replace(purpose, consent_ttl_days=days), actor=ACTOR)
        notices.publish(
            conn, rt.purposes, "privacy", "1", "Notice text.", list(CONSENT_PURPOSES), actor=ACTOR
        )
    yield rt
    rt.close()


def expected_reason(key: str, model: dict[str, tuple[State, datetime | None]]) -> Reason:
    if key == "service_delivery":
        return Reason.NOT_REQUIRED
    if key not in model:
        return Reason.NEVER_ASKED
    state, expires = model[key]
    if state is not State.GRANTED:
        return Reason.DENIED
    if expires is not None and expires <= clock.now():
        return Reason.EXPIRED
    return Reason.GRANTED


def apply(rt: Runtime, ref: SubjectRef, op: Op) -> int | None:
    """Perform one call; returns the version it answered (None for a time jump)."""
    kind, arg = op
    if kind == "jump":
        assert isinstance(arg, timedelta)
        fake = clock.now
        assert isinstance(fake, FakeClock)
        fake.moment += arg
        return None
    if kind == "withdraw_all":
        return rt.consent.withdraw(ref, None, "web", gpc=False, actor=ACTOR).state.version
    assert isinstance(arg, str)
    if kind == "withdraw":
        return rt.consent.withdraw(ref, [arg], "web", gpc=False, actor=ACTOR).state.version
    state = "granted" if kind == "grant" else "denied"
    write = ConsentWrite(ref=ref, purposes={arg: state}, source="web", notice=("privacy", "1"))
    return rt.consent.record(write, actor=ACTOR).state.version


def update(model: dict[str, tuple[State, datetime | None]], op: Op) -> None:
    kind, arg = op
    now = clock.now()
    if kind == "withdraw_all":
        for key in KEYS:
            if key in CONSENT_PURPOSES or key in model:
                model[key] = (State.WITHDRAWN, None)
    elif kind == "withdraw":
        model[str(arg)] = (State.WITHDRAWN, None)
    elif kind == "grant":
        model[str(arg)] = (State.GRANTED, now + timedelta(days=TTL_DAYS[str(arg)]))
    elif kind == "deny":
        model[str(arg)] = (State.DENIED, None)


@FIXED
@given(ops=OPS)
def test_fold_and_decide_equal_the_last_decision(runtime: Runtime, ops: list[Op]) -> None:
    """DESIGN.md: "A subject's current state is the fold of its entries; every change bumps
    the subject's version"; API.md: "Only grants expire ...; denials and withdrawals never
    lapse"."""
    rt = runtime
    ref = SubjectRef(identities=(Identity(IdentityType.EMAIL, f"p{next(_people)}@example.com"),))
    with rt.store.write() as conn:
        subject_id = rt.subjects.resolve(conn, ref, actor=ACTOR).subject.subject_id
    model: dict[str, tuple[State, datetime | None]] = {}
    last_version = 0
    for op in ops:
        version = apply(rt, ref, op)
        update(model, op)
        if version is not None:
            assert version > last_version
            last_version = version
        with rt.store.read() as conn:
            purposes = rt.purposes.all(conn)
            entries = ledger.history(conn, subject_id, None, after_version=0, limit=10_000)
            loaded = ledger.load(conn, subject_id)
            checks = {key: rt.consent.check(conn, ref, key) for key in KEYS}
        versions = [e.version for e in entries]
        assert versions == sorted(set(versions))
        folded = ledger.fold(subject_id, entries)
        assert ledger.fold(subject_id, reversed(entries)) == folded
        assert folded.version == loaded.version == last_version
        for key in KEYS:
            reason = expected_reason(key, model)
            assert policy.decide(purposes[key], folded, clock.now()).reason is reason, key
            assert policy.decide(purposes[key], loaded, clock.now()).reason is reason, key
            assert checks[key].reason is reason, key
            assert checks[key].version == last_version
            if key in model:
                held = folded.purposes[key]
                assert (held.state, held.expires_at) == model[key]
            else:
                assert key not in folded.purposes


ENTRY_PURPOSES = st.sampled_from(["analytics", "marketing", "location"])
ENTRY_STATES = st.sampled_from(list(State))


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(st.tuples(ENTRY_PURPOSES, ENTRY_STATES), min_size=0, max_size=20),
    order=st.randoms(use_true_random=False),
)
def test_fold_keeps_the_entry_with_the_highest_version(
    items: list[tuple[str, State]], order: object
) -> None:
    """ledger.fold: "per purpose, the entry with the highest version wins", whatever the order
    the entries come in."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        LedgerEntry(
            entry_id=n,
            subject_id="sub_p",
            purpose=purpose,
            state=state,
            source=Source.WEB,
            at=start + timedelta(minutes=n),
            expires_at=start + timedelta(days=n) if state is State.GRANTED else None,
            version=n,
        )
        for n, (purpose, state) in enumerate(items, start=1)
    ]
    shuffled = list(entries)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    folded = ledger.fold("sub_p", shuffled)
    assert folded.version == len(entries)
    last = {e.purpose: e for e in entries}
    assert set(folded.purposes) == set(last)
    for key, entry in last.items():
        held = folded.purposes[key]
        assert (held.state, held.updated_at, held.expires_at) == (
            entry.state,
            entry.at,
            entry.expires_at,
        )
