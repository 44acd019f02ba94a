"""What requests and notices disclose (both back-ends, real receivers on loopback): nothing
before verification, not even whether the person's data reached anyone; no corrected value
after an erasure made by another process."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient

from consentry.dsr.models import Level, RequestType, Verification
from consentry.dsr.requests import NewRequest
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import IdentityType, Jurisdiction, SubjectRef
from consentry.subjects.normalise import normalise
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.dsr.conftest import email, grant, request, run
from tests.dsr.recipients.conftest import add, delivered, pump, state, system, worker


def objection(client: TestClient, name: str) -> dict[str, Any]:
    body = {"type": "objection", "subject": email(name), "jurisdiction": "EU"}
    return request(client, body | {"purposes": ["marketing"]})


# What differs between any two requests whatever their subject.
_OWN = {"request_id", "received_at", "due_at"}


def test_an_unverified_objection_answers_the_same_for_a_known_and_an_unknown_person(
    gateway: TestClient,
) -> None:
    """A customer whose data reached a system, and a person nobody knows: the same status
    and the same fields on receipt; whom it waits for is shown once verified."""
    grant(gateway, email("kara"), "analytics", "marketing")
    with receiver() as hook:
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, email("kara"))
        known = objection(gateway, "kara")
        unknown = objection(gateway, "nobody")
        assert {k: v for k, v in known.items() if k not in _OWN} == {
            k: v for k, v in unknown.items() if k not in _OWN
        }
        assert known["status"] == "awaiting_downstream"
        assert not {"downstream", "notices", "step", "subject_id"} & set(known)
        for made in (known, unknown):
            got = state(gateway, made["request_id"])
            assert got["status"] == "awaiting_downstream"
            assert not {"downstream", "notices", "step", "subject_id"} & set(got)
        # The runner completes the one that told nobody; the other waits for "paper".
        run(gateway)
        assert state(gateway, unknown["request_id"])["status"] == "completed"
        url = f"/v1/requests/{known['request_id']}/verify"
        verified = gateway.post(url, headers=auth(), json={"method": "x", "level": "reasonable"})
        assert verified.status_code == 200, verified.text
        shown = verified.json()
        assert shown["status"] == "awaiting_downstream"
        assert [(d["system_id"], d["kind"]) for d in shown["downstream"]] == [
            ("paper", "objection")
        ]
        ack = gateway.post(
            f"/v1/requests/{known['request_id']}/acks", headers=auth(), json={"system_id": "paper"}
        )
        assert ack.json()["status"] == "completed"


def test_no_corrected_value_goes_out_after_another_process_erased_the_subject(
    gateway: TestClient, settings: Settings
) -> None:
    """Two processes on one database: this one queued a rectification notice (the subject's
    key is held in its memory); the other erases the subject before the notice is sent. The
    notice goes without `corrected`."""
    subject = email("remo")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        delivered(gateway, hook, subject)
        old = hashlib.sha256(b"remo@example.com").hexdigest()
        rid = request(
            gateway,
            {
                "type": "rectification",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "id_document", "level": "high", "matched": ["document"]},
                "changes": {
                    "identities": [
                        {"type": "email", "old_sha256": old, "value": "remo.b@example.com"}
                    ]
                },
            },
        )["request_id"]
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        other = Runtime(settings)
        try:
            ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, "remo.b@example.com"),))
            erased, _ = other.requests.create(
                NewRequest(
                    type=RequestType.ERASURE,
                    ref=ref,
                    jurisdiction=Jurisdiction.EU,
                    verification=Verification("id_document", Level.HIGH),
                ),
                actor="t",
            )
            assert erased.step.value == "shredded"
        finally:
            other.close()
        pump(worker(gateway), rights, 1)
        [sent] = rights.bodies()
        assert sent["type"] == "rectification"
        assert "corrected" not in sent
        assert "remo" not in str(sent)
