"""Fixtures for data-subject requests: a store with a notice and an event schema whose fields
are kept in clear, sealed, tokenised; the runner driven by the test (no background thread); a
fake of the dsr port."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from consentry.dsr.models import NoticeKind
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import auth

NOTICE = {"id": "main", "version": "1"}
CONSENT_PURPOSES = ["analytics", "personalization", "marketing", "advertising"]
SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", "personalization", "legal_compliance"],
    "fields": {
        "topic": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "message": {"type": "string", "category": "user.content", "treatment": "keep"},
        "card": {"type": "string", "category": "user.financial", "treatment": "tokenise"},
        "offer": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
    },
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with the background runner off: tests call run_pending(). Their
    downstream receivers listen on loopback."""
    return dataclasses.replace(settings, dsr_poll_seconds=0, allow_private_endpoints=True)


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    resp = client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES},
    )
    assert resp.status_code == 201, resp.text
    assert client.put("/v1/schemas/chat", headers=auth(), json=SCHEMA).status_code == 201
    return client


def runtime_of(client: TestClient) -> Runtime:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(rt, Runtime)
    return rt


def email(name: str) -> dict[str, Any]:
    return {"identities": [{"type": "email", "value": f"{name}@example.com"}]}


def grant(client: TestClient, subject: dict[str, Any], *purposes: str) -> str:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "purposes": dict.fromkeys(purposes, "granted"),
            "source": "web",
            "notice": NOTICE,
            "evidence": {"ip": "192.0.2.10"},
        },
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["subject_id"])


def send(client: TestClient, subject: dict[str, Any], n: int, prefix: str, **props: Any) -> Any:
    events = [
        {
            "event_id": f"{prefix}-{i}",
            "event_type": "chat",
            "occurred_at": "2026-11-20T10:00:00Z",
            "subject": subject,
            "properties": props,
        }
        for i in range(n)
    ]
    resp = client.post("/v1/events", headers=auth(), json={"events": events})
    assert resp.status_code == 200, resp.text
    return resp.json()


def request(client: TestClient, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    resp = client.post("/v1/requests", headers=auth(), json=body)
    assert resp.status_code == status, resp.text
    return dict(resp.json())


def erase(client: TestClient, subject: dict[str, Any], method: str = "id_document") -> str:
    """An erasure of `subject` asked for in the EU, verified at a high level: its request id."""
    body = {
        "type": "erasure",
        "subject": subject,
        "jurisdiction": "EU",
        "verification": {"method": method, "level": "high"},
    }
    return str(request(client, body)["request_id"])


def check(client: TestClient, subject: dict[str, Any], purpose: str = "analytics") -> str:
    resp = client.post(
        "/v1/consents/check", headers=auth(), json={"subject": subject, "purpose": purpose}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["reason"])


def run(client: TestClient) -> dict[str, Any]:
    return runtime_of(client).runner.run_pending()


def result(
    client: TestClient, subject: dict[str, Any], kind: str, accept: str = "application/json"
) -> str:
    """The body of a verified `kind` request's result (access or portability) for `subject`."""
    rid = request(
        client,
        {
            "type": kind,
            "subject": subject,
            "jurisdiction": "EU",
            "verification": {"method": "account_login", "level": "high"},
        },
    )["request_id"]
    run(client)
    resp = client.get(f"/v1/requests/{rid}/result", headers=auth() | {"Accept": accept})
    assert resp.status_code == 200, resp.text
    return resp.text


class FakeSystems:
    """A fake of the dsr port (our own interface): two systems received the data; each
    notice is acknowledged once (through the rights endpoint: `acked`, or by hand)."""

    def __init__(self) -> None:
        self.acked: set[str] = set()
        self.sent: list[tuple[str, NoticeKind]] = []
        self.notices: list[dict[str, Any]] = []

    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        return 2

    def notify(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        request_id: str | None,
        purposes: Sequence[str] | None,
        actor: str,
        corrected: Sequence[tuple[str, str]] = (),
        jurisdiction: str | None = None,
    ) -> list[str]:
        self.sent.append((subject_id, kind))
        for system_id in ("crm", "warehouse"):
            self.notices.append(
                {"request_id": request_id, "system_id": system_id, "type": kind.value}
                | {"acknowledged_at": None}
            )
        return ["crm", "warehouse"]

    def acknowledgements(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        for n in self.notices:
            if n["system_id"] in self.acked and n["acknowledged_at"] is None:
                n["acknowledged_at"] = "2026-11-20T10:00:00Z"
        mine = [n for n in self.notices if n["request_id"] == request_id]
        return [
            {
                "system_id": system_id,
                "kind": [n for n in mine if n["system_id"] == system_id][-1]["type"],
                "sent_at": "2026-11-20T09:00:00Z",
                "acknowledged_at": None
                if any(n["acknowledged_at"] is None for n in mine if n["system_id"] == system_id)
                else "2026-11-20T10:00:00Z",
            }
            for system_id in sorted({n["system_id"] for n in mine})
        ]

    def recipients(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        return []

    def notices_of(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        return []

    def acknowledge(self, conn: Connection, request_id: str, system_id: str, *, actor: str) -> int:
        waiting = [
            n
            for n in self.notices
            if n["request_id"] == request_id
            and n["system_id"] == system_id
            and n["acknowledged_at"] is None
        ]
        for n in waiting:
            n["acknowledged_at"] = "2026-11-20T10:00:00Z"
        return len(waiting)
