"""Duplicate requests through the HTTP API on both back-ends: a new request joins an open one
only when it asks the same thing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dsr.conftest import check, email, grant, request


def test_a_direct_marketing_objection_is_never_a_duplicate_of_another(ready: TestClient) -> None:
    """An open objection to other purposes does not swallow a direct-marketing one, which
    takes effect on receipt."""
    subject = email("olga")
    grant(ready, subject, "marketing")
    pending = request(ready, {"type": "objection", "subject": subject, "jurisdiction": "EU"})
    assert pending["status"] == "received"
    dm = request(
        ready,
        {"type": "objection", "subject": subject, "jurisdiction": "EU", "purposes": ["marketing"]},
    )
    assert dm["request_id"] != pending["request_id"]
    assert check(ready, subject, "marketing") == "objected"
    again = request(ready, {"type": "objection", "subject": subject, "jurisdiction": "EU"})
    assert again["request_id"] == pending["request_id"]
