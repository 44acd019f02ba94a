"""Consent expiry acted on (both back-ends, through HTTP and the CLI): a lapsed grant becomes
an `expired` entry dated at its expires_at, its recipient is told on a real loopback receiver,
its events are purged or narrowed; once only, also after a pass that failed half-way."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from consentry import clock
from consentry.app import create_app
from consentry.cli import app
from consentry.consent.expiry import Expiry
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import consent as consent_sql
from consentry.storage.schema import events, subject_status
from tests.conftest import MASTER_KEY, auth
from tests.delivery.receiver import receiver

NOTICE = {"id": "main", "version": "1"}
SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "offer": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
        "note": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["analytics"],
        },
    },
}
TOKEN_TTL = 3 * 86_400


@pytest.fixture
def expiry_settings(settings: Settings) -> Settings:
    """No background runner nor delivery worker (the test drives both); tokens live longer
    than the one-day grants, so the token's bound shows; receivers on loopback."""
    return dataclasses.replace(
        settings,
        dsr_poll_seconds=0,
        delivery_worker=False,
        retry_base_seconds=0.05,
        token_ttl_seconds=TOKEN_TTL,
        allow_private_endpoints=True,
    )


@pytest.fixture
def gateway(expiry_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(expiry_settings)) as client:
        for key, name, days in (
            ("analytics", "Analytics", 1),
            ("personalization", "Personalisation", 2),
        ):
            resp = client.put(
                f"/v1/purposes/{key}",
                headers=auth(),
                json={
                    "name": name,
                    "legal_basis": "consent",
                    "retention_days": 365,
                    "consent_ttl_days": days,
                },
            )
            assert resp.status_code in {200, 201}, resp.text
        resp = client.put(
            "/v1/notices/main",
            headers=auth(),
            json={
                "version": "1",
                "text": "Notice.",
                "purposes": ["analytics", "personalization"],
            },
        )
        assert resp.status_code == 201, resp.text
        assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
        yield client


def runtime_of(client: TestClient) -> Runtime:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(rt, Runtime)
    return rt


def who(name: str) -> dict[str, Any]:
    return {"identities": [{"type": "email", "value": f"{name}@example.com"}]}


def grant(client: TestClient, name: str, *purposes: str) -> dict[str, Any]:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": who(name),
            "purposes": dict.fromkeys(purposes, "granted"),
            "source": "web",
            "notice": NOTICE,
        },
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def send(client: TestClient, name: str, event_id: str) -> list[str]:
    event = {
        "event_id": event_id,
        "event_type": "page_view",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": who(name),
        "properties": {"url": "/home", "offer": "spring", "note": "liked"},
    }
    resp = client.post("/v1/events", headers=auth(), json={"events": [event]})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["results"][0].get("purposes", []))


def check(client: TestClient, name: str, purpose: str) -> str:
    resp = client.post(
        "/v1/consents/check", headers=auth(), json={"subject": who(name), "purpose": purpose}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["reason"])


def history(client: TestClient, subject_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/v1/subjects/{subject_id}/consent/history?limit=100", headers=auth())
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def cli_pass(settings: Settings) -> dict[str, Any]:
    """`consentry requests run` on the same store: one pass of the runner."""
    env = {
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_DB": settings.db,
        "CONSENTRY_ALLOW_PRIVATE_ENDPOINTS": "true",
    }
    result = CliRunner().invoke(app, ["requests", "run"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


def due(client: TestClient) -> dict[str, Any]:
    """The summary's count of subjects due for re-consent (of this file's purposes; every
    other consent purpose counts 0)."""
    resp = client.get("/v1/compliance/summary", headers=auth())
    assert resp.status_code == 200, resp.text
    found = resp.json()["reconsent_due"]
    ours = {"analytics", "personalization"}
    assert not any(n for key, n in found["by_purpose"].items() if key not in ours)
    return {"subjects": found["subjects"], "by_purpose": {k: found["by_purpose"][k] for k in ours}}


def add_crm(
    client: TestClient, endpoint: str, rights_endpoint: str, *, consent_events: bool = False
) -> None:
    resp = client.put(
        "/v1/systems/crm",
        headers=auth(),
        json={
            "name": "CRM",
            "kind": "webhook",
            "endpoint": endpoint,
            "purposes": ["analytics"],
            "data_categories": ["system.operations"],
            "region": "EU",
            "transfer_mechanism": "none",
            "dpa_signed": True,
            "rights_endpoint": rights_endpoint,
            "consent_events": consent_events,
        },
    )
    assert resp.status_code == 201, resp.text


def test_a_lapsed_grant_is_recorded_told_and_purged_once(
    gateway: TestClient, expiry_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_of(gateway)
    with receiver() as hook, receiver() as rights:
        add_crm(gateway, hook.url, rights.url)
        first = grant(gateway, "ana", "analytics")
        subject_id = first["subject_id"]
        expires = at(first["purposes"]["analytics"]["expires_at"])
        # A token never vouches for a grant past its expiry: exp is the grant's expires_at
        # (whole seconds), not iat + the token lifetime of three days.
        claims = jwt.decode(first["token"], options={"verify_signature": False})
        assert claims["exp"] == int(expires.timestamp()) < claims["iat"] + TOKEN_TTL
        assert at(first["token_expires_at"]) <= expires
        assert send(gateway, "ana", "only") == ["analytics"]
        grant(gateway, "ana", "personalization")
        assert send(gateway, "ana", "both") == ["analytics", "personalization"]
        # Nobody dates an expiry but the sweep.
        forged = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "expiry"},
        )
        assert forged.status_code == 422, forged.text
        assert forged.json()["code"] == "invalid_source"
        worker = rt.delivery_worker()
        assert worker.run_once() == 2
        pseudonym = hook.events()[0]["subject_pseudonym"]

        real_now = clock.now
        later = real_now() + timedelta(days=1, hours=1)
        monkeypatch.setattr(clock, "now", lambda: later)
        # The check says expired from expires_at on, before any sweep; the summary's query
        # counts the subject as due for re-consent already.
        assert check(gateway, "ana", "analytics") == "expired"
        assert due(gateway) == {"subjects": 1, "by_purpose": {"analytics": 1, "personalization": 0}}

        done = cli_pass(expiry_settings)["expired"]
        assert done == {"expired": 1, "subjects": 1, "notices": 1, "deleted": 1, "narrowed": 1}

        entries = history(gateway, subject_id)
        last = entries[-1]
        assert (last["purpose"], last["state"], last["source"]) == (
            "analytics",
            "expired",
            "expiry",
        )
        # Dated when the grant lapsed, not when the pass ran; the latest version.
        assert at(last["at"]) == expires < later
        assert last["version"] == max(e["version"] for e in entries)
        assert last["expires_at"] is None
        assert check(gateway, "ana", "analytics") == "expired"
        assert check(gateway, "ana", "personalization") == "granted"
        state = gateway.get(f"/v1/subjects/{subject_id}/consent", headers=auth()).json()
        assert state["purposes"]["analytics"]["state"] == "expired"
        assert state["version"] == last["version"]

        worker.run_once()
        assert rights.bodies() == [
            {
                "type": "consent_expired",
                "subject_pseudonym": pseudonym,
                "system_id": "crm",
                "purposes": ["analytics"],
            }
        ]
        with rt.store.read() as conn:
            rows = {
                r.event_id: r
                for r in conn.execute(select(events).where(events.c.subject_id == subject_id))
            }
        # Stored only for analytics: gone. Stored for personalization too: it loses analytics
        # and the field that served only analytics.
        assert set(rows) == {"both"}
        assert json.loads(rows["both"].purposes) == ["personalization"]
        assert json.loads(rows["both"].properties) == {"url": "/home", "offer": "spring"}

        # Again, in the server's runner: nothing more is written, nobody told twice.
        again = rt.runner.run_pending()["expired"]
        assert again == dict.fromkeys(done, 0)
        assert history(gateway, subject_id) == entries
        worker.run_once()
        assert len(rights.bodies()) == 1

    actions = [
        e["action"]
        for e in gateway.get(
            f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
        ).json()["items"]
    ]
    assert actions.count("consent:expired") == 1
    assert actions.count("events:expiry:purged") == 1
    # A later grant supersedes the expiry as usual; the subject is no longer due.
    regrant = grant(gateway, "ana", "analytics")
    assert check(gateway, "ana", "analytics") == "granted"
    assert history(gateway, subject_id)[-1]["state"] == "granted"
    assert regrant["version"] > last["version"]
    assert due(gateway) == {"subjects": 0, "by_purpose": {"analytics": 0, "personalization": 0}}


def test_a_pass_that_fails_half_way_writes_each_expiry_once(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three subjects granting at one instant (their grants of a purpose lapse together:
    the sweep's cursor breaks ties by entry), two lapsed grants each, read a grant per page:
    a pass that fails at the second subject, then a full pass, record every expiry once (on
    PostgreSQL the first subject's transaction had committed; on SQLite it rolled back with
    the rest)."""
    names = ["ada", "bea", "cy"]
    instant = clock.now()
    monkeypatch.setattr(clock, "now", lambda: instant)
    ids = [grant(gateway, name, "analytics", "personalization")["subject_id"] for name in names]
    rt = runtime_of(gateway)
    later = instant + timedelta(days=3)
    expiry = Expiry(rt.store, rt.consent, rt.erasure, page=1)

    class FailsAtTheSecond:
        """The real purge, failing (as a crash would) at the second subject."""

        def purge_expired(
            self, conn: Any, subject_id: str, purpose: str, **kw: Any
        ) -> tuple[int, int]:
            if subject_id == ids[1]:
                raise RuntimeError("crash")
            return rt.erasure.purge_expired(conn, subject_id, purpose, **kw)

    expiry.purge = FailsAtTheSecond()
    with pytest.raises(RuntimeError):
        expiry.expire_due(later)
    expiry.purge = rt.erasure
    done = expiry.expire_due(later)
    assert done["subjects"] in {2, 3}  # the first subject's may have committed
    assert expiry.expire_due(later)["expired"] == 0
    for subject_id in ids:
        expired = [e for e in history(gateway, subject_id) if e["state"] == "expired"]
        assert sorted(e["purpose"] for e in expired) == ["analytics", "personalization"]
        # In ledger order: one version each, after the grants.
        assert [e["source"] for e in expired] == ["expiry", "expiry"]
    assert due(gateway) == {"subjects": 3, "by_purpose": {"analytics": 3, "personalization": 3}}
    with rt.store.read() as conn:
        cursor = consent_sql.expiry_cursor(conn)
    assert cursor is not None
    assert cursor[0] <= later


def test_an_expiry_in_the_sweep_is_propagated_and_changes_the_status(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as a step of the retention sweep, a lapsed grant's `expired` entry reaches a system
    asking for consent changes as a `consent_updated` after the grant's, and the subject's
    compliance status follows."""
    rt = runtime_of(gateway)
    with receiver() as hook, receiver() as rights:
        add_crm(gateway, hook.url, rights.url, consent_events=True)
        first = grant(gateway, "ana", "analytics", "personalization")
        subject_id = first["subject_id"]
        path = f"/v1/subjects/{subject_id}/compliance"
        assert gateway.get(path, headers=auth()).json()["purposes"]["analytics"] == "granted"
        later = clock.now() + timedelta(days=1, hours=1)
        monkeypatch.setattr(clock, "now", lambda: later)
        steps = rt.retention.run_steps("test")
        assert steps["expiry"]["expired"] == 1
        expired = history(gateway, subject_id)[-1]
        assert (expired["purpose"], expired["state"]) == ("analytics", "expired")
        assert gateway.get(path, headers=auth()).json()["purposes"]["analytics"] == "expired"
        # The stored status (what the summary counts) was kept in the expiry's transaction.
        with rt.store.read() as conn:
            stored = conn.execute(
                select(subject_status.c.version).where(subject_status.c.subject_id == subject_id)
            ).scalar_one()
        assert stored == expired["version"]
        worker = rt.delivery_worker()
        for _ in range(3):
            worker.run_once()
        updates = [b for b in rights.bodies() if b["type"] == "consent_updated"]
        assert [(b["purposes"], b["version"]) for b in updates] == [
            ({"analytics": "granted"}, first["version"]),
            ({"analytics": "expired"}, expired["version"]),
        ]


def test_a_restricted_subjects_events_outlast_its_expiry_until_the_lifting(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Art. 18: the expiry of a restricted subject's grant is recorded and told, but its events
    are only stored while the restriction holds (as the retention sweep holds them); the
    first sweep after the lifting purges them, once."""
    rt = runtime_of(gateway)
    subject_id = grant(gateway, "ana", "analytics", "personalization")["subject_id"]
    assert send(gateway, "ana", "both") == ["analytics", "personalization"]
    resp = gateway.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": "restriction",
            "subject": who("ana"),
            "jurisdiction": "EU",
            "ground": "18_1_c",
            "verification": {"method": "account_login", "level": "reasonable"},
        },
    )
    assert resp.status_code in {200, 201, 202}, resp.text
    grant(gateway, "bob", "analytics")
    assert send(gateway, "bob", "bob-only") == ["analytics"]

    def stored() -> dict[str, list[str]]:
        with rt.store.read() as conn:
            rows = conn.execute(select(events.c.event_id, events.c.purposes)).all()
        return {r.event_id: json.loads(r.purposes) for r in rows}

    now = {"t": clock.now() + timedelta(days=3)}
    monkeypatch.setattr(clock, "now", lambda: now["t"])
    steps = rt.retention.run_steps("test")["expiry"]
    # Both of ana's grants and bob's lapsed: all recorded; only bob's event is purged.
    assert (steps["expired"], steps["subjects"], steps["deleted"]) == (3, 2, 1)
    assert [e["state"] for e in history(gateway, subject_id)][-2:] == ["expired", "expired"]
    assert stored() == {"both": ["analytics", "personalization"]}
    # Held while the restriction lasts, pass after pass.
    assert rt.retention.run_steps("test")["expiry"]["deleted"] == 0
    assert stored() == {"both": ["analytics", "personalization"]}

    url = f"/v1/subjects/{subject_id}/restriction"
    body = {"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"}
    assert gateway.request("DELETE", url, headers=auth(), json=body).status_code == 200
    now["t"] += timedelta(minutes=1)
    after = rt.retention.run_steps("test")["expiry"]
    assert (after["expired"], after["deleted"]) == (0, 1)
    assert stored() == {}
    assert rt.retention.run_steps("test")["expiry"]["deleted"] == 0
    purged = [
        e["details"]["purpose"]
        for e in gateway.get(
            f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
        ).json()["items"]
        if e["action"] == "events:expiry:purged"
    ]
    assert sorted(purged) == ["analytics", "personalization"]  # one purge each
