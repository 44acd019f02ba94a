"""Other persons' data inside the subject's events (Art. 15(4), 20(4)), on both back-ends: the
access report and the portable copy (JSON and CSV) redact e-mail addresses and phone numbers
that are not the subject's, and values equal to an identity of another person, known or
erased; the subject's own identities stay."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.settings import Settings
from tests.conftest import auth
from tests.dsr.conftest import grant, request, result, run, send


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dsr_poll_seconds=0, delivery_worker=False)


ADA = {
    "identities": [
        {"type": "email", "value": "Ada@Example.com"},
        {"type": "phone", "value": "+44 7700 900123"},
        {"type": "customer_id", "value": "CUST-1001"},
    ]
}
BOB = {
    "identities": [
        {"type": "email", "value": "bob@example.com"},
        {"type": "customer_id", "value": "CUST-2002"},
    ]
}
CLEO = {"identities": [{"type": "customer_id", "value": "CUST-3003"}]}
MESSAGE = (
    "Write to me at ada@example.com or to Bob at Bob@Example.com; call me on 07700 900123 or "
    "+44 7700 900123, not Carl on +44 7700 900456. Card 4111 1111 1111 1111."
)
REDACTED = (
    "Write to me at ada@example.com or to Bob at <EMAIL>; call me on 07700 900123 or "
    "+44 7700 900123, not Carl on <PHONE>. Card 4111 1111 1111 1111."
)


def properties(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e["properties"] for e in events}


def test_other_persons_data_is_redacted_and_the_subjects_own_stays(ready: TestClient) -> None:
    grant(ready, ADA, "analytics")
    grant(ready, BOB, "analytics")
    grant(ready, CLEO, "analytics")
    erased = request(
        ready,
        {
            "type": "erasure",
            "subject": CLEO,
            "jurisdiction": "EU",
            "verification": {"method": "x", "level": "high"},
        },
    )
    run(ready)
    status = ready.get(f"/v1/requests/{erased['request_id']}", headers=auth()).json()["status"]
    assert status == "completed"
    send(ready, ADA, 1, "a", topic="billing", message=MESSAGE, card="4111")
    send(ready, ADA, 1, "b", topic="CUST-2002", message="CUST-2002", card="CUST-1001")
    send(ready, ADA, 1, "c", topic="bob@example.com", message=" CUST-3003 ", card="CUST-2002")
    send(ready, ADA, 1, "d", topic="billing", message="+44 7700 900123")

    expected = {
        "a-0": {"topic": "billing", "message": REDACTED, "card": "4111"},
        # Bob's customer id as a whole personal value (sealed or tokenised): another known
        # person. In a field the schema declares about no person (system.operations) it is
        # not looked up; Ada's own customer id stays.
        "b-0": {"topic": "CUST-2002", "message": "<OTHER_PERSON>", "card": "CUST-1001"},
        # The identity of a person since erased is another person's too; an address that is
        # not Ada's is redacted in any field.
        "c-0": {"topic": "<EMAIL>", "message": "<OTHER_PERSON>", "card": "<OTHER_PERSON>"},
        "d-0": {"topic": "billing", "message": "+44 7700 900123"},
    }
    access = json.loads(result(ready, ADA, "access"))
    assert properties(access["events"]) == expected
    assert "Art. 15(4)" in access["others_data"]
    assert {"type": "email", "value": "ada@example.com"} in access["identities"]

    portable = json.loads(result(ready, ADA, "portability"))
    assert properties(portable["events"]) == expected
    assert "Art. 20(4)" in portable["others_data"]
    rows = list(csv.DictReader(io.StringIO(result(ready, ADA, "portability", "text/csv"))))
    assert {r["event_id"]: json.loads(r["properties"]) for r in rows} == expected


PARENT = {
    "by": "parent@example.com",
    "phone": "+44 7700 900456",
    "child_account": "CUST-2002",
    "note": "Confirmed by parent@example.com; reply to ada@example.com or 07700 900123.",
    "checks": ["card", {"called": "+44 7700 900456"}, 3, None],
    "bob@example.com": "signed",
}
PARENT_REDACTED = {
    "by": "<EMAIL>",
    "phone": "<PHONE>",
    "child_account": "<OTHER_PERSON>",
    "note": "Confirmed by <EMAIL>; reply to ada@example.com or 07700 900123.",
    "checks": ["card", {"called": "<PHONE>"}, 3, None],
    "<EMAIL>": "signed",
}


def test_other_persons_data_in_consent_evidence_is_redacted(ready: TestClient) -> None:
    """API.md, Access result: consent history "with ... evidence", other persons' data inside
    the result left out or redacted (Art. 15(4)): a parent's address, number or another
    subject's identifier in a grant's evidence is redacted in the report and the portable
    copy, at any depth and in keys; the subject's own identities stay. The operator's history
    endpoint keeps the evidence as it was given (proof of consent)."""
    grant(ready, BOB, "analytics")
    resp = ready.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": ADA,
            "purposes": {"analytics": "granted"},
            "source": "app",
            "notice": {"id": "main", "version": "1"},
            "jurisdiction": "EU",
            "age_band": "under_13",
            "evidence": {"parental_authorization": PARENT, "ip": "192.0.2.10"},
        },
    )
    assert resp.status_code == 200, resp.text
    subject_id = resp.json()["subject_id"]
    expected = {"parental_authorization": PARENT_REDACTED, "ip": "192.0.2.10"}
    for kind in ("access", "portability"):
        body = result(ready, ADA, kind)
        for needle in ("parent@example.com", "bob@example.com", "900456", "CUST-2002"):
            assert needle not in body
        evidence = [e["evidence"] for e in json.loads(body)["consent_history"]]
        assert evidence == [expected]
    history = ready.get(f"/v1/subjects/{subject_id}/consent/history", headers=auth()).json()
    assert history["items"][-1]["evidence"]["parental_authorization"] == PARENT
