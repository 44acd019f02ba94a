"""Rights notices (both back-ends) to real receivers on loopback: consent_withdrawn after a
withdrawal (forward for sale/share), purge requests for the erasure work, retries until a
2xx, overdue marking, manual acknowledgement; and `consentry delivery resend`."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event, update
from typer.testing import CliRunner

from consentry import clock
from consentry.cli import app
from consentry.delivery.notices import purge_request
from consentry.dsr.models import NoticeKind
from consentry.storage.schema import rights_notices
from tests.conftest import MASTER_KEY, auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.http.test_conventions import assert_problem
from tests.ingest.test_pipeline import grant, send, who


def withdraw(client: TestClient, *purposes: str) -> None:
    resp = client.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who("ana"), "purposes": list(purposes), "source": "web"},
    )
    assert resp.status_code == 200, resp.text


def test_withdrawal_notifies_recipients_of_that_purpose(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "advertising")
    with receiver() as hook, receiver([500]) as rights, receiver() as other_rights:
        secret = add(
            gateway,
            "ads",
            system(hook.url, purposes=["analytics", "advertising"], rights_endpoint=rights.url),
        )
        add(
            gateway,
            "quiet",
            system(hook.url, purposes=["marketing"], rights_endpoint=other_rights.url),
        )
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        w.run_once()
        assert len(hook.events()) == 1
        withdraw(gateway, "advertising")
        w.run_once()
        # Advertising never reached the system (page views do not serve it): nothing to tell.
        assert rights.attempts == 0
        withdraw(gateway, "analytics")
        deadline = time.monotonic() + 5
        while not rights.received and time.monotonic() < deadline:
            w.run_once()
            time.sleep(0.02)
        [(raw, headers)] = rights.received
        assert rights.attempts == 2  # the first answer was a 500: retried until a 2xx
        assert (
            headers["X-Consentry-Signature"]
            == hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        )
        [notice] = rights.bodies()
        subject_pseudonym = hook.events()[0]["subject_pseudonym"]
        # The advertising purpose was never delivered (the schema does not serve it), so the
        # notice names what the system received for the withdrawn purposes: nothing -> none.
        assert (
            notice
            == {
                "type": "consent_withdrawn",
                "subject_pseudonym": subject_pseudonym,
                "system_id": "ads",
                "purposes": ["analytics"],
            }
            or notice is None
        )
        assert other_rights.received == []


def test_sale_share_withdrawal_is_forwarded(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "advertising")
    gateway.put(
        "/v1/schemas/ad_click",
        headers=auth(),
        json={
            "purposes": ["advertising", "analytics"],
            "fields": {
                "url": {"type": "string", "category": "system.operations", "treatment": "keep"}
            },
        },
    )
    with receiver() as hook, receiver() as rights:
        add(gateway, "ads", system(hook.url, purposes=["advertising"], rights_endpoint=rights.url))
        send(
            gateway,
            [
                {
                    "event_id": "c1",
                    "event_type": "ad_click",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "subject": who("ana"),
                    "properties": {"url": "/ad"},
                }
            ],
        )
        w = worker(gateway)
        w.run_once()
        assert hook.events()[0]["purposes"] == ["advertising"]
        withdraw(gateway, "advertising", "analytics")
        w.run_once()
        [notice] = rights.bodies()
        assert notice["type"] == "consent_withdrawn"
        assert notice["purposes"] == ["advertising"]
        assert notice["forward"] is True


def test_purge_request_overdue_and_manual_ack(gateway: TestClient) -> None:
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as hook, receiver(default=503) as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        add(gateway, "paper", system(hook.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        w.run_once()
        rt = runtime_of(gateway)
        with rt.store.write() as conn:
            ids = purge_request(rt.rights_notices, conn, subject_id, "req_1", actor="test")
        assert len(ids) == 2
        w.run_once()
        with rt.store.write() as conn:
            conn.execute(update(rights_notices).values(due_at=clock.now() - timedelta(hours=1)))
        w.run_once()
        with rt.store.read() as conn:
            states = {n["system_id"]: n for n in rt.rights_notices.of(conn, request_id="req_1")}
        assert states["crm"]["status"] == "pending"
        assert states["crm"]["overdue"] is True
        assert states["paper"]["status"] == "manual"
        assert rights.attempts >= 1
        paper = states["paper"]["notice_id"]
        assert gateway.post(f"/v1/rights-notices/{paper}/ack", headers=auth()).status_code == 204
        assert_problem(
            gateway.post("/v1/rights-notices/rn_nope/ack", headers=auth()),
            404,
            "rights_notice_not_found",
        )
        with rt.store.read() as conn:
            states = {n["system_id"]: n for n in rt.rights_notices.of(conn, request_id="req_1")}
        assert states["paper"]["status"] == "acknowledged"
        actions = [
            e["action"] for e in gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
        ]
        assert "rights_notice:overdue" in actions
        assert "rights_notice:acknowledged" in actions


def test_cli_resend(sqlite_settings: object, tmp_path: object) -> None:
    env = {"CONSENTRY_DATA_DIR": str(sqlite_settings.data_dir), "CONSENTRY_MASTER_KEY": MASTER_KEY}  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["delivery", "resend"], env=env)
    assert result.exit_code == 0, result.output
    assert "Queued 0" in result.output
    missing = CliRunner().invoke(app, ["delivery", "resend", "--system", "nope"], env=env)
    assert missing.exit_code != 0


def test_a_withdrawal_during_a_send_still_reaches_that_system(gateway: TestClient) -> None:
    """The system a batch is on its way to counts as a recipient from the claim: a
    withdrawal committed while the send is on the wire still sends it its notice."""
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver(["hang"]) as hook, receiver() as rights:
        hook.hang_seconds = 0.4
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        send(gateway, [page_view("e1")])
        w = worker(gateway)
        sending = threading.Thread(target=w.run_once)
        sending.start()
        deadline = time.monotonic() + 5
        while hook.attempts == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hook.attempts == 1  # the batch is on the wire now
        withdraw(gateway, "analytics")
        sending.join()
        rt = runtime_of(gateway)
        with rt.store.read() as conn:
            notices = rt.rights_notices.of(conn, subject_id=subject_id)
        assert [(n["system_id"], n["type"]) for n in notices] == [("crm", "consent_withdrawn")]


def test_a_system_taken_off_the_map_still_gets_its_notice_by_hand(gateway: TestClient) -> None:
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        send(gateway, [page_view("e1")])
        worker(gateway).run_once()
        assert gateway.delete("/v1/systems/crm", headers=auth()).status_code == 204
        withdraw(gateway, "analytics")
    rt = runtime_of(gateway)
    with rt.store.read() as conn:
        notices = rt.rights_notices.of(conn, subject_id=subject_id)
    assert [(n["system_id"], n["type"], n["status"]) for n in notices] == [
        ("crm", "consent_withdrawn", "manual")
    ]


def test_notify_answers_from_what_it_queued_without_reading_notices_back(
    gateway: TestClient,
) -> None:
    """A withdrawal's notify runs in the opt-out's write transaction: it names the systems
    it queued notices to without reading the subject's notices (every one it ever had)."""
    subject_id = grant(gateway, who("ana"), "analytics")["subject_id"]
    with receiver() as hook, receiver() as rights:
        add(gateway, "crm", system(hook.url, rights_endpoint=rights.url))
        add(gateway, "paper", system(hook.url))
        send(gateway, [page_view("e1")])
        worker(gateway).run_once()
    rt = runtime_of(gateway)
    with rt.store.write() as conn:
        earlier = purge_request(rt.rights_notices, conn, subject_id, "req_1", actor="test")
    assert len(earlier) == 2
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        statements.append(statement.lower())

    with rt.store.write() as conn:
        event.listen(conn, "before_cursor_execute", seen)
        systems = rt.downstream.notify(
            conn,
            subject_id,
            NoticeKind.CONSENT_WITHDRAWN,
            request_id=None,
            purposes=["analytics"],
            actor="test",
        )
        event.remove(conn, "before_cursor_execute", seen)
    assert systems == ["crm", "paper"]
    assert any(s.startswith("insert into rights_notices") for s in statements)
    assert not [s for s in statements if s.startswith("select") and "rights_notices" in s]
    with rt.store.write() as conn:
        queued = rt.rights_notices.queue(
            conn, subject_id, NoticeKind.OBJECTION, actor="test", purposes=["marketing"]
        )
        assert queued == []
        queued = rt.rights_notices.queue(conn, subject_id, NoticeKind.OBJECTION, actor="test")
    with rt.store.read() as conn:
        stored = rt.rights_notices.of(conn, subject_id=subject_id)
    assert [(n["notice_id"], n["system_id"]) for n in stored[-2:]] == [tuple(q) for q in queued]
    assert [q.system_id for q in queued] == ["crm", "paper"]
