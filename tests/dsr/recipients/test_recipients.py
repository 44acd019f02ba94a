"""Requests whose subject's data has recipients (both back-ends), with real webhook receivers
on loopback: every type completes, its Art. 19 notices (`restriction`, `restriction_lifted`,
`rectification` with `corrected`, `objection`, `purge_request`) are received signed, and the
request reaches `completed` only once each is acknowledged."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.storage.schema import rights_notices
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.dsr.conftest import NOTICE, check, email, grant, request, run, runtime_of
from tests.dsr.recipients.conftest import (
    VISIT,
    add,
    delivered,
    pump,
    signed,
    state,
    system,
    visit,
    worker,
)


def test_restriction_waits_for_each_acknowledgement_and_its_lifting_is_acknowledged(
    gateway: TestClient,
) -> None:
    subject = email("rosa")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook, receiver(script=[503]) as rights:
        secret = add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        pseudonym = delivered(gateway, hook, subject)
        created = request(
            gateway,
            {
                "type": "restriction",
                "subject": subject,
                "jurisdiction": "EU",
                "ground": "18_1_a",
                "verification": {"method": "id_document", "level": "reasonable"},
            },
        )
        rid = created["request_id"]
        assert created["status"] == "awaiting_downstream"
        assert [(d["system_id"], d["kind"]) for d in created["downstream"]] == [
            ("crm", "restriction")
        ]
        assert check(gateway, subject) == "restricted"
        w = worker(gateway)
        w.run_once()
        assert rights.attempts == 1  # answered 503: not acknowledged
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        pump(w, rights, 1)
        assert signed(rights, 0, secret) == {
            "type": "restriction",
            "request_id": rid,
            "subject_pseudonym": pseudonym,
            "system_id": "crm",
        }
        run(gateway)
        done = state(gateway, rid)
        assert done["status"] == "completed"
        assert done["downstream"][0]["acknowledged_at"] is not None

        lifted = gateway.request(
            "DELETE",
            f"/v1/subjects/{subject_id}/restriction",
            headers=auth(),
            json={"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"},
        )
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["notified"] == ["crm"]
        assert lifted.json()["request_id"] == rid
        pump(w, rights, 2)
        assert signed(rights, 1, secret) == {
            "type": "restriction_lifted",
            "request_id": rid,
            "subject_pseudonym": pseudonym,
            "system_id": "crm",
        }
        notices = state(gateway, rid)["notices"]
        assert [(n["type"], n["status"]) for n in notices] == [
            ("restriction", "acknowledged"),
            ("restriction_lifted", "acknowledged"),
        ]
        assert check(gateway, subject) == "granted"


def test_a_lifting_notice_without_a_rights_endpoint_is_acknowledged_by_hand(
    gateway: TestClient,
) -> None:
    subject = email("rhea")
    subject_id = grant(gateway, subject, "analytics")
    with receiver() as hook:
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        body = {
            "type": "restriction",
            "subject": subject,
            "jurisdiction": "EU",
            "ground": "18_1_d",
            "verification": {"method": "x", "level": "reasonable"},
        }
        rid = request(gateway, body)["request_id"]
        url = f"/v1/requests/{rid}/acks"
        assert gateway.post(url, headers=auth(), json={"system_id": "paper"}).status_code == 200
        assert state(gateway, rid)["status"] == "completed"
        lifted = gateway.request(
            "DELETE",
            f"/v1/subjects/{subject_id}/restriction",
            headers=auth(),
            json={"reason": "objection decided", "subject_informed_at": "2026-11-23T10:00:00Z"},
        )
        assert lifted.status_code == 200, lifted.text
        notices = state(gateway, rid)["notices"]
        assert [(n["type"], n["status"]) for n in notices] == [
            ("restriction", "acknowledged"),
            ("restriction_lifted", "manual"),
        ]
        # The operator answers the lifting's notice through the request it ends.
        assert gateway.post(url, headers=auth(), json={"system_id": "paper"}).status_code == 200
        notices = state(gateway, rid)["notices"]
        assert notices[1]["status"] == "acknowledged"


def test_rectification_sends_corrected_values_of_the_declared_categories(
    gateway: TestClient,
) -> None:
    subject = email("ruth")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as crm_rights, receiver() as ops_rights:
        crm_secret = add(gateway, "crm", system(hook.url, rights_endpoint=crm_rights.url))
        ops_secret = add(
            gateway,
            "ops",
            system(hook.url, data_categories=["system.operations"], rights_endpoint=ops_rights.url),
        )
        add(gateway, "paper", system(hook.url))
        delivered(gateway, hook, subject)
        old = hashlib.sha256(b"ruth@example.com").hexdigest()
        created = request(
            gateway,
            {
                "type": "rectification",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "id_document", "level": "high", "matched": ["document"]},
                "changes": {
                    "identities": [
                        {"type": "email", "old_sha256": old, "value": "Ruth.New@Example.com"}
                    ]
                },
            },
        )
        rid = created["request_id"]
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        w = worker(gateway)
        pump(w, crm_rights, 1)
        pump(w, ops_rights, 1)
        crm = signed(crm_rights, 0, crm_secret)
        assert crm["type"] == "rectification"
        assert crm["request_id"] == rid
        # The CRM declares user.contact: it gets the new e-mail address, normalised.
        assert crm["corrected"] == [
            {"type": "email", "category": "user.contact.email", "value": "ruth.new@example.com"}
        ]
        ops = signed(ops_rights, 0, ops_secret)
        assert ops["type"] == "rectification"
        assert "corrected" not in ops
        # The new value waits in the outbox sealed, never in clear.
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            rows = conn.execute(select(rights_notices)).all()
        assert b"ruth.new" not in repr([tuple(r) for r in rows]).encode()
        assert any(r.sealed is not None for r in rows)
        run(gateway)
        # "paper" has no rights endpoint: the request waits for an operator.
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        ack = gateway.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "paper"})
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "completed"
        assert check(gateway, email("ruth.new")) == "granted"


def test_a_direct_marketing_objection_waits_for_its_recipients(gateway: TestClient) -> None:
    subject = email("otto")
    grant(gateway, subject, "analytics", "marketing")
    with receiver() as hook, receiver() as rights:
        secret = add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        pseudonym = delivered(gateway, hook, subject)
        created = request(
            gateway,
            {
                "type": "objection",
                "subject": subject,
                "jurisdiction": "EU",
                "purposes": ["marketing"],
            },
        )
        rid = created["request_id"]
        # In effect on receipt, without verification; done once the CRM acknowledges. Whom
        # it waits for is not told before verification.
        assert created["status"] == "awaiting_downstream"
        assert not {"downstream", "notices", "step", "subject_id"} & set(created)
        assert check(gateway, subject, "marketing") == "objected"
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        w = worker(gateway)
        pump(w, rights, 2)
        notices = {b["type"]: b for b in (signed(rights, n, secret) for n in range(2))}
        assert notices["objection"] == {
            "type": "objection",
            "request_id": rid,
            "subject_pseudonym": pseudonym,
            "system_id": "crm",
            "purposes": ["marketing"],
        }
        # Consent for it is withdrawn too.
        assert notices["consent_withdrawn"]["purposes"] == ["marketing"]
        run(gateway)
        done = state(gateway, rid)
        assert done["status"] == "completed"
        assert done["completed_at"] is not None
        # Still nothing disclosed without verification.
        assert not {"downstream", "notices", "step", "subject_id"} & set(done)
        # Acknowledged through the rights endpoint: nothing is owed by hand.
        ack = gateway.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"})
        assert ack.status_code == 409


def test_an_upheld_objection_is_notified_and_acknowledged(gateway: TestClient) -> None:
    subject = email("olga")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver(script=[500]) as rights:
        secret = add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        pseudonym = delivered(gateway, hook, subject)
        created = request(
            gateway,
            {
                "type": "objection",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "x", "level": "reasonable"},
            },
        )
        rid = created["request_id"]
        assert created["purposes"] == ["security"]
        assert created["status"] == "in_progress"
        decision = {"purpose": "security", "outcome": "upheld", "grounds": "none overriding"}
        decided = gateway.post(f"/v1/requests/{rid}/decision", headers=auth(), json=decision)
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "awaiting_downstream"
        assert check(gateway, subject, "security") == "objected"
        w = worker(gateway)
        w.run_once()  # answered 500
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        pump(w, rights, 1)
        assert signed(rights, 0, secret) == {
            "type": "objection",
            "request_id": rid,
            "subject_pseudonym": pseudonym,
            "system_id": "crm",
            "purposes": ["security"],
        }
        run(gateway)
        assert state(gateway, rid)["status"] == "completed"


def test_an_overridden_objection_tells_no_recipient(gateway: TestClient) -> None:
    subject = email("omar")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        delivered(gateway, hook, subject)
        rid = request(
            gateway,
            {
                "type": "objection",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "x", "level": "reasonable"},
            },
        )["request_id"]
        decision = {"purpose": "security", "outcome": "overridden", "grounds": "fraud checks"}
        done = gateway.post(f"/v1/requests/{rid}/decision", headers=auth(), json=decision).json()
        assert done["status"] == "completed"
        worker(gateway).run_once()
        assert rights.attempts == 0
        assert check(gateway, subject, "security") == "not_required"


@pytest.mark.parametrize("kind", ["access", "portability"])
def test_access_and_portability_complete_with_recipients(gateway: TestClient, kind: str) -> None:
    subject = email("ada")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        delivered(gateway, hook, subject)
        rid = request(
            gateway,
            {
                "type": kind,
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "x", "level": "high"},
            },
        )["request_id"]
        run(gateway)
        assert state(gateway, rid)["status"] == "completed"
        result = gateway.get(f"/v1/requests/{rid}/result", headers=auth())
        assert result.status_code == 200, result.text
        assert [e["event_id"] for e in result.json()["events"]] == ["v1"]
        worker(gateway).run_once()
        assert rights.attempts == 0  # nothing to tell recipients


def test_erasure_with_recipients_sends_signed_purge_requests(gateway: TestClient) -> None:
    subject = email("erin")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver(script=[503]) as rights:
        secret = add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        pseudonym = delivered(gateway, hook, subject)
        rid = request(
            gateway,
            {
                "type": "erasure",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "x", "level": "high"},
            },
        )["request_id"]
        run(gateway)
        w = worker(gateway)
        w.run_once()
        run(gateway)
        assert state(gateway, rid)["status"] == "awaiting_downstream"
        pump(w, rights, 1)
        assert signed(rights, 0, secret) == {
            "type": "purge_request",
            "request_id": rid,
            "subject_pseudonym": pseudonym,
            "system_id": "crm",
        }
        run(gateway)
        assert state(gateway, rid)["status"] == "completed"


def test_a_lifting_never_overtakes_the_restriction_it_ends(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restriction notice failed and waits for its retry when the lifting is queued: the
    system still learns of the restriction first (else it would stay restricted)."""
    subject = email("rene")
    subject_id = grant(gateway, subject, "analytics")
    runtime_of(gateway).rights_notices.retry_base = 60.0
    with receiver() as hook, receiver(script=[503]) as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        delivered(gateway, hook, subject)
        request(
            gateway,
            {
                "type": "restriction",
                "subject": subject,
                "jurisdiction": "EU",
                "ground": "18_1_a",
                "verification": {"method": "x", "level": "reasonable"},
            },
        )
        w = worker(gateway)
        w.run_once()
        assert rights.attempts == 1  # 503: retried in 30 to 60 seconds
        lifted = gateway.request(
            "DELETE",
            f"/v1/subjects/{subject_id}/restriction",
            headers=auth(),
            json={"reason": "accuracy confirmed", "subject_informed_at": "2026-11-23T10:00:00Z"},
        )
        assert lifted.status_code == 200, lifted.text
        w.run_once()
        assert rights.attempts == 1  # the lifting waits behind the restriction
        real_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=2))
        pump(w, rights, 2)
        assert [b["type"] for b in rights.bodies()] == ["restriction", "restriction_lifted"]


def test_a_system_that_acknowledged_is_awaited_again_for_a_later_notice(
    gateway: TestClient,
) -> None:
    """An objection to two purposes, decided one after the other: the CRM acknowledged the
    first notice by hand; the request still waits for its answer to the second."""
    fraud = {"name": "Fraud checks", "legal_basis": "legitimate_interest", "retention_days": 90}
    assert gateway.put("/v1/purposes/fraud", headers=auth(), json=fraud).status_code == 201
    schema = VISIT | {"purposes": [*VISIT["purposes"], "fraud"]}
    assert gateway.put("/v1/schemas/visit", headers=auth(), json=schema).status_code == 200
    subject = email("opal")
    grant(gateway, subject, "analytics")
    with receiver() as hook, receiver() as rights:
        purposes = ["analytics", "security", "fraud"]
        add(gateway, "crm", system(hook.url, purposes=purposes, rights_endpoint=rights.url))
        delivered(gateway, hook, subject)
        rid = request(
            gateway,
            {
                "type": "objection",
                "subject": subject,
                "jurisdiction": "EU",
                "verification": {"method": "x", "level": "reasonable"},
            },
        )["request_id"]
        url = f"/v1/requests/{rid}/decision"
        upheld = {"outcome": "upheld", "grounds": "none overriding"}
        first = gateway.post(url, headers=auth(), json=upheld | {"purpose": "security"})
        assert first.json()["status"] == "in_progress", first.text
        ack = gateway.post(f"/v1/requests/{rid}/acks", headers=auth(), json={"system_id": "crm"})
        assert ack.status_code == 200, ack.text
        second = gateway.post(url, headers=auth(), json=upheld | {"purpose": "fraud"})
        assert second.json()["status"] == "awaiting_downstream", second.text
        pump(worker(gateway), rights, 1)  # the first was acknowledged by hand, not sent again
        assert rights.bodies()[0]["purposes"] == ["fraud"]
        run(gateway)
        assert state(gateway, rid)["status"] == "completed"


def test_a_us_ca_purge_request_is_forwarded_by_service_providers(gateway: TestClient) -> None:
    """§1798.105(c), regs §7022(b): a service provider, contractor or third party passes the
    deletion on to its own sub-processors; a system with no CCPA role is not asked to."""
    subject = email("cora")
    resp = gateway.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": NOTICE,
            "jurisdiction": "US-CA",
        },
    )
    assert resp.status_code == 200, resp.text
    with receiver() as hook, receiver() as provider, receiver() as plain:
        add(
            gateway,
            "provider",
            system(hook.url, ccpa_role="service_provider", rights_endpoint=provider.url),
        )
        add(gateway, "plain", system(hook.url, rights_endpoint=plain.url))
        visit(gateway, subject, "v1")
        assert worker(gateway).run_once() == 2
        rid = request(
            gateway,
            {
                "type": "erasure",
                "subject": subject,
                "jurisdiction": "US-CA",
                "verification": {"method": "x", "level": "high"},
            },
        )["request_id"]
        run(gateway)
        w = worker(gateway)
        pump(w, provider, 1)
        pump(w, plain, 1)
        assert provider.bodies()[0]["type"] == "purge_request"
        assert provider.bodies()[0]["forward"] is True
        assert "forward" not in plain.bodies()[0]
        run(gateway)
        assert state(gateway, rid)["status"] == "completed"
