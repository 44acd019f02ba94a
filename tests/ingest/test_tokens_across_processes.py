"""A consent token signed by another process's newer key is verified, not refused."""

from __future__ import annotations

import msgspec

from consentry.consent import notices
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise
from tests.ingest.test_pipeline import CONSENT_PURPOSES, SCHEMA


def test_a_token_from_a_rotated_key_in_another_process(settings: Settings) -> None:
    a, b = Runtime(settings), Runtime(settings)
    try:
        with b.store.write() as conn:
            notices.publish(conn, b.purposes, "main", "1", "N.", CONSENT_PURPOSES, actor="t")
            b.schemas.put(conn, "page_view", SCHEMA, b.purposes.all(conn), actor="t")
            b.signing_keys.rotate(conn)
        ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, "rot@example.com"),))
        written = b.consent.record(
            ConsentWrite(
                ref=ref, purposes={"analytics": "granted"}, source="web", notice=("main", "1")
            ),
            actor="t",
        )
        body = msgspec.json.encode(
            {
                "events": [
                    {
                        "event_id": "k1",
                        "event_type": "page_view",
                        "occurred_at": "2026-11-20T10:00:00Z",
                        "subject": {"subject_id": written.state.subject_id},
                        "consent_token": written.token.token,
                        "properties": {"url": "/"},
                    }
                ]
            }
        )
        results = a.pipeline.ingest(body, actor="t")
        assert [r.code for r in results] == [None]
    finally:
        a.close()
        b.close()
