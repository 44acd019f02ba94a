"""A refused consent write leaves nothing behind, in storage or in any process's cache."""

from __future__ import annotations

import pytest

from consentry.consent import notices
from consentry.consent.service import ConsentWrite
from consentry.errors import NoticeRequired
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise

ANA = SubjectRef(identities=(normalise(IdentityType.EMAIL, "ana.cache@example.com"),))


def test_a_refused_write_does_not_poison_the_cache(settings: Settings) -> None:
    """Process A's refused write (with a jurisdiction change) must not leave an uncommitted
    state in A's cache that a later committed version in process B would seem to match."""
    a, b = Runtime(settings), Runtime(settings)
    try:
        with a.store.write() as conn:
            notices.publish(conn, a.purposes, "main", "1", "N.", ["analytics"], actor="t")
        a.consent.record(
            ConsentWrite(
                ref=ANA,
                purposes={"analytics": "granted"},
                source="web",
                notice=("main", "1"),
                jurisdiction="EU",
            ),
            actor="t",
        )
        with pytest.raises(NoticeRequired):
            a.consent.record(
                ConsentWrite(
                    ref=ANA, purposes={"advertising": "granted"}, source="web", jurisdiction="UK"
                ),
                actor="t",
            )
        b.consent.withdraw(ANA, ["analytics"], "web", gpc=False, actor="t")
        with a.store.read() as conn:
            decision = a.consent.check(conn, ANA, "analytics")
        assert decision.reason == "denied"
        with a.store.read() as conn:
            assert a.consent.state(conn, decision_subject(a)).jurisdiction == "EU"
    finally:
        a.close()
        b.close()


def decision_subject(rt: Runtime) -> str:
    with rt.store.read() as conn:
        found = rt.subjects.find(conn, ANA)
    assert found is not None
    return found.subject_id
