"""Rectification through the HTTP API on both back-ends: the old value proved by its hash,
the new one in effect, nothing of either in clear in the audit log."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.dsr.conftest import check, email, grant, request, run
from tests.http.test_conventions import assert_problem


def test_rectification(ready: TestClient) -> None:
    subject = email("ruth")
    subject_id = grant(ready, subject, "analytics")
    wrong = {"type": "email", "old_sha256": "0" * 64, "value": "ruth.new@example.com"}
    body = {
        "type": "rectification",
        "subject": subject,
        "jurisdiction": "EU",
        "verification": {"method": "x", "level": "high", "matched": ["document"]},
        "changes": {"identities": [wrong]},
    }
    assert_problem(ready.post("/v1/requests", headers=auth(), json=body), 409, "integrity_mismatch")
    right = dict(wrong, old_sha256=hashlib.sha256(b"ruth@example.com").hexdigest())
    created = request(ready, body | {"changes": {"identities": [right]}})
    run(ready)
    assert (
        ready.get(f"/v1/requests/{created['request_id']}", headers=auth()).json()["status"]
        == "completed"
    )
    assert check(ready, email("ruth.new")) == "granted"
    entries = ready.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    rect = next(e for e in entries if e["action"] == "subject:identity:rectified")
    assert "ruth" not in str(rect["details"])
    assert rect["details"]["old_keyed_hash"] != right["old_sha256"]
