"""A fold never mixes a subject row read before a write with ledger entries read after it."""

from __future__ import annotations

from sqlalchemy import insert

from consentry import clock
from consentry.consent import ledger, notices
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.storage.schema import consent_ledger
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise


def test_entries_above_the_rows_version_are_not_folded(runtime: Runtime) -> None:
    with runtime.store.write() as conn:
        notices.publish(conn, runtime.purposes, "main", "1", "N.", ["analytics"], actor="t")
    ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, "torn@example.com"),))
    written = runtime.consent.record(
        ConsentWrite(
            ref=ref, purposes={"analytics": "granted"}, source="web", notice=("main", "1")
        ),
        actor="t",
    )
    subject_id = written.state.subject_id
    # An entry whose version the subject row does not show yet: a write committing between
    # a reader's two statements looks exactly like this to the reader.
    with runtime.store.write() as conn:
        conn.execute(
            insert(consent_ledger).values(
                subject_id=subject_id,
                version=written.state.version + 1,
                purpose="analytics",
                state="withdrawn",
                source="web",
                at=clock.now(),
                explicit=False,
                actor="t",
            )
        )
    with runtime.store.read() as conn:
        state = ledger.load(conn, subject_id)
    assert state.version == written.state.version
    assert state.purposes["analytics"].state == "granted"
