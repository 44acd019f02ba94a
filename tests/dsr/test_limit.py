"""A request to limit the use of sensitive personal information (CCPA §1798.121), both
back-ends, through the HTTP API: taken on receipt without verification, shown on the
subject's consent, and from then on its sensitive fields serve only regs §7027(m) uses in
ingest, reads (event pages, exports, group_by) and deliveries."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.consent import policy
from consentry.ingest.sealing import AAD_PREFIX
from consentry.ingest.work import Work
from consentry.settings import Settings
from consentry.storage.schema import events
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.dsr.conftest import NOTICE, email, runtime_of

# analytics (consent) is no §7027(m) use; service_delivery (contract) and security
# (strictly necessary) are.
CHECKOUT: dict[str, Any] = {
    "purposes": ["analytics", "service_delivery"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "city": {"type": "string", "category": "user.location.imprecise", "treatment": "keep"},
        "spot": {"type": "string", "category": "user.location.precise", "treatment": "keep"},
        "card": {
            "type": "string",
            "category": "user.financial.credit_card",
            "treatment": "keep",
        },
    },
}
# Stored for analytics alone: nothing there may keep a limited subject's sensitive data.
STATS: dict[str, Any] = {
    "purposes": ["analytics"],
    "fields": {k: v for k, v in CHECKOUT["fields"].items() if k != "card"},
}
PROPS = {"url": "/pay", "city": "Fresno", "spot": "36.7378,-119.7871", "card": "4111111111111111"}
SENSITIVE = {"spot", "card"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, delivery_worker=False, min_group_subjects=1)


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    resp = client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": ["analytics"]},
    )
    assert resp.status_code == 201, resp.text
    for name, schema in (("checkout", CHECKOUT), ("stats", STATS)):
        assert client.put(f"/v1/schemas/{name}", headers=auth(), json=schema).status_code == 201
    return client


def grant(client: TestClient, name: str, jurisdiction: str = "US-CA") -> str:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": email(name),
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": NOTICE,
            "jurisdiction": jurisdiction,
        },
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["subject_id"])


def limit(client: TestClient, name: str, jurisdiction: str = "US-CA", **extra: Any) -> Any:
    resp = client.post(
        "/v1/requests",
        headers=auth(),
        json={"type": "limit", "subject": email(name), "jurisdiction": jurisdiction} | extra,
    )
    assert resp.status_code == 202, resp.text
    return resp.json()


def send(
    client: TestClient,
    name: str,
    event_id: str,
    event_type: str = "checkout",
    subject: dict[str, Any] | None = None,
) -> Any:
    props = PROPS if event_type == "checkout" else {k: PROPS[k] for k in ("url", "city", "spot")}
    body = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": "2026-01-05T10:00:00Z",
        "subject": subject or email(name),
        "properties": props,
    }
    resp = client.post("/v1/events", headers=auth(), json={"events": [body]})
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    assert result["status"] == "accepted", result
    return result


def shown(client: TestClient, purpose: str) -> dict[str, dict[str, Any]]:
    resp = client.get(f"/v1/events?purpose={purpose}&limit=100", headers=auth())
    assert resp.status_code == 200, resp.text
    return {e["event_id"]: e["properties"] for e in resp.json()["items"]}


def exported(client: TestClient, purpose: str) -> dict[str, dict[str, Any]]:
    made = client.post("/v1/exports", headers=auth(), json={"purpose": purpose, "format": "jsonl"})
    assert made.status_code == 200, made.text
    resp = client.get(f"/v1/exports/{made.json()['export_id']}/download", headers=auth())
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines()]
    return {e["event_id"]: e["properties"] for e in lines}


def stored(client: TestClient, event_id: str) -> dict[str, Any]:
    """What the store holds of an event, sealed values opened: what ingest kept."""
    rt = runtime_of(client)
    with rt.store.read() as conn:
        row = conn.execute(
            select(events.c.subject_id, events.c.properties, events.c.sealed).where(
                events.c.event_id == event_id
            )
        ).one()
        values = dict(json.loads(row.properties))
        if row.sealed is not None:
            sealer = rt.subject_keys.sealer(conn, row.subject_id)
            values |= json.loads(sealer.open(row.sealed, AAD_PREFIX + event_id.encode()))
    return values


def test_a_limit_needs_no_verification_and_shows_on_the_consent(shop: TestClient) -> None:
    subject_id = grant(shop, "ana")
    before = shop.get(f"/v1/subjects/{subject_id}/consent", headers=auth()).json()
    assert before["sensitive_limited"] is False
    made = limit(shop, "ana")
    assert made["type"] == "limit"
    assert made["status"] == "completed"
    assert made["verification"]["required"] == "none"
    resp = shop.get(f"/v1/subjects/{subject_id}/consent", headers=auth())
    assert resp.json()["sensitive_limited"] is True
    # Given with a verification, it is verified and done the same way; only then does its
    # result say what was done (nothing is told an unverified requester).
    again = limit(shop, "ana", verification={"method": "account_login", "level": "reasonable"})
    assert again["status"] == "completed"
    assert again["verification"]["verified_at"] is not None
    result = shop.get(f"/v1/requests/{again['request_id']}/result", headers=auth())
    assert result.status_code == 200, result.text
    assert result.json()["sensitive_limited"] is True


def test_a_limit_for_someone_unknown_holds_when_their_data_comes(shop: TestClient) -> None:
    """Like an opt-out, a limit for a person nobody knows yet records the person."""
    limit(shop, "cy")
    grant(shop, "cy")
    send(shop, "cy", "u1")
    assert stored(shop, "u1").keys() & SENSITIVE == SENSITIVE
    assert shown(shop, "analytics")["u1"] == {"url": "/pay", "city": "Fresno"}


def test_a_limit_outside_california_is_honoured(shop: TestClient) -> None:
    subject_id = grant(shop, "eu", jurisdiction="EU")
    assert limit(shop, "eu", jurisdiction="EU")["status"] == "completed"
    resp = shop.get(f"/v1/subjects/{subject_id}/consent", headers=auth())
    assert resp.json()["sensitive_limited"] is True
    send(shop, "eu", "x1", "stats")
    assert "spot" not in stored(shop, "x1")


def test_ingest_keeps_sensitive_fields_only_for_permitted_uses(shop: TestClient) -> None:
    grant(shop, "bo")
    send(shop, "bo", "before", "stats")
    assert stored(shop, "before")["spot"] == PROPS["spot"]
    limit(shop, "bo")
    # Stored for analytics alone: the sensitive field is not stored at all.
    send(shop, "bo", "after", "stats")
    assert stored(shop, "after") == {"url": "/pay", "city": "Fresno"}
    # Stored for analytics and service_delivery: kept, for service_delivery only.
    send(shop, "bo", "both")
    assert stored(shop, "both").keys() == PROPS.keys()
    assert shown(shop, "analytics")["both"] == {"url": "/pay", "city": "Fresno"}
    assert shown(shop, "service_delivery")["both"] == PROPS


def test_reads_leave_out_sensitive_fields_stored_before_the_limit(shop: TestClient) -> None:
    grant(shop, "di")
    grant(shop, "ed")
    send(shop, "di", "d1")
    send(shop, "ed", "e1")
    assert shown(shop, "analytics")["d1"] == PROPS
    limit(shop, "di")
    for read in (shown, exported):
        analytics = read(shop, "analytics")
        assert analytics["d1"] == {"url": "/pay", "city": "Fresno"}
        assert analytics["e1"] == PROPS  # no limit of its own
        assert read(shop, "service_delivery")["d1"] == PROPS
    query = {"purpose": "analytics", "event_type": "checkout", "metric": "count"}
    resp = shop.post("/v1/query", headers=auth(), json=query | {"group_by": ["card"]})
    assert resp.status_code == 200, resp.text
    rows = {row["card"]: row["value"] for row in resp.json()["rows"]}
    assert rows == {None: 1, PROPS["card"]: 1}
    resp = shop.post(
        "/v1/query",
        headers=auth(),
        json=query | {"purpose": "service_delivery", "group_by": ["card"]},
    )
    assert {row["card"]: row["value"] for row in resp.json()["rows"]} == {PROPS["card"]: 2}


def test_a_limit_landing_while_a_batch_is_shaped_holds(
    shop: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consistency rule: a limit that returns after the batch was shaped, before its
    transaction, decides what the batch stores."""
    subject_id = grant(shop, "fe")
    send(shop, "fe", "f0", "stats")  # this process now holds the subject's key
    rt = runtime_of(shop)
    shape = rt.pipeline._shape_early
    shaped: list[bool] = []

    def then_limit(work: Work, *args: Any) -> None:
        shape(work, *args)
        shaped.extend(row is not None for row in work.early_rows)
        assert rt.consent.cache.get(subject_id).sensitive_limited is False  # type: ignore[union-attr]
        limit(shop, "fe")

    monkeypatch.setattr(rt.pipeline, "_shape_early", then_limit)
    # Named by subject id, the event is shaped early from this process's cache.
    send(shop, "fe", "f1", "stats", subject={"subject_id": subject_id})
    assert shaped == [True]
    assert "spot" not in stored(shop, "f1")


def test_deliveries_carry_sensitive_fields_only_for_permitted_uses(shop: TestClient) -> None:
    every = ["system.operations", "user"]
    grant(shop, "gil")
    rt = runtime_of(shop)
    with receiver() as stats, receiver() as orders:
        for system_id, url, purposes in (
            ("stats", stats.url, ["analytics"]),
            ("orders", orders.url, ["service_delivery"]),
        ):
            resp = shop.put(
                f"/v1/systems/{system_id}",
                headers=auth(),
                json={
                    "name": system_id,
                    "kind": "webhook",
                    "endpoint": url,
                    "purposes": purposes,
                    "data_categories": every,
                    "region": "EU",
                    "transfer_mechanism": "none",
                    "dpa_signed": True,
                },
            )
            assert resp.status_code == 201, resp.text
        # Accepted before the limit, sent after it; then one accepted after it.
        send(shop, "gil", "g1")
        limit(shop, "gil")
        send(shop, "gil", "g2")
        assert rt.delivery_worker().run_once() == 4
        to_stats = {e["event_id"]: e["properties"] for e in stats.events()}
        assert to_stats == {
            "g1": {"url": "/pay", "city": "Fresno"},
            "g2": {"url": "/pay", "city": "Fresno"},
        }
        assert not any(PROPS["card"].encode() in body for body, *_ in stats.received)
        to_orders = {e["event_id"]: e["properties"] for e in orders.events()}
        assert to_orders == {"g1": PROPS, "g2": PROPS}


def test_which_purposes_and_categories_a_limit_covers(shop: TestClient) -> None:
    """Of a fresh install's purposes, those regs §7027(m) allows keep sensitive data; the
    fideslang categories of §1798.140(ae) are sensitive, their neighbours are not."""
    rt = runtime_of(shop)
    with rt.store.read() as conn:
        purposes = rt.consent.registry.all(conn)
    permitted = {k for k, p in purposes.items() if policy.sensitive_use_permitted(p)}
    assert permitted == {"service_delivery", "legal_compliance", "security"}
    for category in (
        "user.government_id.passport_number",
        "user.authorization.password",
        "user.financial.bank_account",
        "user.location.precise",
        "user.demographic.race_ethnicity",
        "user.content.private",
        "user.health_and_medical.genetic",
        "user.biometric.fingerprint",
        "user.demographic.sexual_orientation",
    ):
        assert policy.is_sensitive_category(category), category
    for category in ("user.location.imprecise", "user.content.public", "user.account.username"):
        assert not policy.is_sensitive_category(category), category
