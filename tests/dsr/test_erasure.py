"""Erasure through the HTTP API on both back-ends: effective at once, retained items listed,
rows gone, tombstones, nothing of the person left in the data directory's files."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import auth
from tests.dsr.conftest import check, email, grant, request, run, runtime_of, send
from tests.http.test_conventions import assert_problem

MARKER = "zebra-lasagne-8471"
SECRET_TEXT = "my parcel to 12 Quillfeather Lane never came"


def _scan(data_dir: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [(path.name, n) for n in needles if n in content]
    return found


def test_erasure_end_to_end(ready: TestClient, settings: Settings) -> None:
    subject = email("erin")
    subject_id = grant(ready, subject, "analytics", "personalization")
    sent = send(ready, subject, 20, "e", topic=MARKER, message=SECRET_TEXT, card="4111")
    assert sent["accepted"] == 20
    other = email("olaf")
    grant(ready, other, "analytics")
    send(ready, other, 3, "o", topic="kept-for-olaf")
    needles = [b"erin@example.com", MARKER.encode(), SECRET_TEXT.encode()]
    if settings.db == "":
        runtime_of(ready).store.checkpoint()
        # The marker is stored in clear while the person is a customer: the scan can fail.
        assert any(n == MARKER.encode() for _, n in _scan(settings.data_dir, needles))

    body = {"type": "erasure", "subject": subject, "jurisdiction": "EU"}
    created = request(ready, body)
    assert created["status"] == "received"
    assert "subject_id" not in created  # nothing disclosed before verification
    assert check(ready, subject) == "granted"  # nothing destroyed either

    resp = ready.post(
        f"/v1/requests/{created['request_id']}/verify",
        headers=auth(),
        json={"method": "id_document", "level": "high"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "in_progress"
    assert check(ready, {"subject_id": subject_id}) == "subject_erased"
    refused = send(ready, {"subject_id": subject_id}, 1, "late", topic="x")
    assert refused["results"][0]["code"] == "subject_erased"

    assert run(ready)["advanced"] >= 1
    done = ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()
    assert done["status"] == "completed"
    assert done["subject_found"] is True
    result = ready.get(f"/v1/requests/{created['request_id']}/result", headers=auth()).json()
    proof = [r for r in result["retained"] if r["item"] == "consent_proof"]
    assert proof
    assert proof[0]["ground"] == "art17_3_e"

    # The same person met again is refused until they consent anew.
    again = send(ready, subject, 1, "again", topic="x")
    assert again["results"][0]["code"] == "subject_erased"
    assert check(ready, subject) == "subject_erased"
    assert_problem(
        ready.post(
            "/v1/consents",
            headers=auth(),
            json={
                "subject": {"subject_id": subject_id},
                "purposes": {},
                "source": "web",
                "gpc": True,
            },
        ),
        410,
        "subject_erased",
    )
    # Someone else is untouched.
    assert check(ready, other) == "granted"

    if settings.db == "":
        assert _scan(settings.data_dir, needles) == []

    grant(ready, subject, "analytics")
    assert check(ready, subject) == "granted"
    assert send(ready, subject, 1, "back", topic="x")["accepted"] == 1


def test_erasure_retains_legal_obligation_events(ready: TestClient) -> None:
    subject = email("lena")
    grant(ready, subject, "analytics")
    assert send(ready, subject, 2, "l", topic="invoice")["accepted"] == 2
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "US-CA",
            "verification": {"method": "account_login", "level": "high"},
        },
    )
    assert created["acknowledge_by"]
    run(ready)
    result = ready.get(f"/v1/requests/{created['request_id']}/result", headers=auth()).json()
    grounds = {(r["item"], r["ground"]) for r in result["retained"]}
    # legal_compliance (legal_obligation) events stay, under the CCPA paragraph for US-CA.
    assert ("event", "1798.105(d)(8)") in grounds
    assert ("consent_proof", "1798.105(d)(8)") in grounds


def test_a_request_survives_a_restart(ready: TestClient, settings: Settings) -> None:
    subject = email("rita")
    grant(ready, subject, "analytics")
    send(ready, subject, 5, "r", topic=MARKER)
    created = request(
        ready,
        {
            "type": "erasure",
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )
    assert created["status"] == "in_progress"
    ready.__exit__(None, None, None)  # the server stops between shredding and deleting
    with TestClient(create_app(settings)) as restarted:
        assert run(restarted)["advanced"] >= 1
        done = restarted.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()
        assert done["status"] == "completed"
        assert done["step"] == "done"
