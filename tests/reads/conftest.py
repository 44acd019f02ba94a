"""Fixtures of the read tests: the ingest tests' gateway with a notice and a page_view schema,
and a shop whose events hold sealed values (kept, redacted), pseudonyms, fields kept for one
purpose and special-category data."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.ingest.conftest import ready
from tests.ingest.test_pipeline import CONSENT_PURPOSES, event, grant, send, who

__all__ = ["ready"]

_numbers = itertools.count()

PAGE_VIEW: dict[str, Any] = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "page": {
            "type": "string",
            "category": "user.behavior.browsing_history",
            "treatment": "keep",
        },
        "message": {"type": "string", "category": "user.content", "treatment": "redact"},
        "email": {"type": "string", "category": "user.contact.email", "treatment": "pseudonymise"},
        "offer": {
            "type": "string",
            "category": "user.behavior",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
    },
}
VISIT: dict[str, Any] = {
    "purposes": ["analytics", "care", "research"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "condition": {"type": "string", "category": "user.health_and_medical", "treatment": "keep"},
        "note": {
            "type": "string",
            "category": "user.content",
            "treatment": "keep",
            "purposes": ["care"],
        },
    },
}
CARE_NOTICE = {"id": "care", "version": "1"}
EXPLICIT = {"explicit": True, "evidence": {"checkbox": "health-consent-v1"}}


def special_purpose(client: TestClient, key: str, condition: str) -> None:
    body = {
        "name": key.title(),
        "legal_basis": "consent",
        "retention_days": 30,
        "special_category_condition": condition,
    }
    resp = client.put(f"/v1/purposes/{key}", headers=auth(), json=body)
    assert resp.status_code in {200, 201}, resp.text


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    """The page_view and visit schemas; `care` (Art. 9(2)(a), explicit consent) and
    `research` (Art. 9(2)(j)) purposes, both on the `care` notice."""
    resp = client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES},
    )
    assert resp.status_code in {200, 201}, resp.text
    special_purpose(client, "care", "a")
    special_purpose(client, "research", "j")
    resp = client.put(
        "/v1/notices/care",
        headers=auth(),
        json={"version": "1", "text": "Care.", "purposes": ["analytics", "care", "research"]},
    )
    assert resp.status_code in {200, 201}, resp.text
    for event_type, schema in (("page_view", PAGE_VIEW), ("visit", VISIT)):
        resp = client.put(f"/v1/schemas/{event_type}", headers=auth(), json=schema)
        assert resp.status_code == 201, resp.text
    return client


def view(
    client: TestClient,
    name: str,
    n: int,
    *,
    page: str = "/checkout",
    **properties: Any,
) -> list[str]:
    """`n` page views of `name` (granted analytics and personalization) on `page`; their ids."""
    grant(client, who(name), "analytics", "personalization")
    events = [
        event(
            f"{name}-{next(_numbers)}",
            who(name),
            properties={"url": "/shop", "page": page} | properties,
        )
        for i in range(n)
    ]
    results = send(client, events)
    assert all(r["status"] == "accepted" for r in results), results
    return [e["event_id"] for e in events]


def events(client: TestClient, purpose: str, **params: Any) -> list[dict[str, Any]]:
    """Every event `GET /v1/events` shows the purpose, page after page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"purpose": purpose, "limit": 100} | params
        if cursor:
            query["cursor"] = cursor
        resp = client.get("/v1/events", headers=auth(), params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items.extend(body["items"])
        cursor = body["next"]
        if cursor is None:
            return items
