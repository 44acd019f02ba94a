"""The breach register through HTTP on both back-ends: deadlines with fixed times (Art. 33,
processor, US-CA), the Art. 34(3) exemptions, append-only notifications, closing with a
late_reason, every refusal's code, the audit trail without free text."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.test_delivery import add, runtime_of, system

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DETECTED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
AWARE = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
SECRET_TEXT = "Ana Example's file was read by a stranger"


def at(moment: datetime) -> str:
    return clock.rfc3339(moment)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> dict[str, datetime]:
    """The clock, held at NOW until a test moves it (`frozen["now"] = ...`)."""
    moment = {"now": NOW}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    return moment


def incident(**extra: Any) -> dict[str, Any]:
    return {
        "detected_at": at(DETECTED),
        "aware_at": at(AWARE),
        "description": SECRET_TEXT,
        "nature": "confidentiality",
        "data_categories": ["user.contact.email"],
        "risk": "risk",
        "keys_compromised": False,
    } | extra


def create(client: TestClient, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    resp = client.post("/v1/incidents", headers=auth(), json=body)
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    return out


def notify(client: TestClient, incident_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/v1/incidents/{incident_id}/notifications", headers=auth(), json=body)


def close(client: TestClient, incident_id: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/v1/incidents/{incident_id}/close", headers=auth(), json=body or {})


def _raw(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/incidents", headers=auth(), json=body)


def refused(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    return body


def test_controller_deadline_notifications_close_and_audit(
    client: TestClient, frozen: dict[str, datetime]
) -> None:
    record = create(client, incident(facts="A laptop was stolen.", dpo_contact="dpo@example.com"))
    iid = record["incident_id"]
    assert record["status"] == "open"
    assert record["authority_due_at"] == at(AWARE + timedelta(hours=72))
    assert record["controller_due"] is None
    assert record["subjects_notice_required"] is False
    assert record["description"] == SECRET_TEXT
    assert record["affected"] is None
    # Art. 33(3): what the record lacks is listed; the authority's notice is still owed.
    assert record["to_complete"] == [
        "subjects_estimate",
        "records_estimate",
        "likely_consequences",
        "measures",
    ]
    assert record["not_notified"] == ["authority"]
    assert client.get(f"/v1/incidents/{iid}", headers=auth()).json() == record
    # Staff's free text is sealed in the register, never stored in clear.
    with runtime_of(client).store.read() as conn:
        rows = conn.exec_driver_sql("SELECT record, sealed FROM incidents").all()
    assert len(rows) == 1
    assert "Ana" not in rows[0][0]
    assert b"Ana" not in bytes(rows[0][1])
    assert "laptop" not in rows[0][0]

    # On time, then a follow-up to the same authority: both kept, the first unchanged.
    first = notify(client, iid, {"to": "authority", "at": at(NOW), "reference": "CASE-1"})
    assert first.status_code == 201, first.text
    [given] = first.json()["notifications"]
    assert given | {"recorded_at": None} == {
        "to": "authority",
        "at": at(NOW),
        "reference": "CASE-1",
        "delay_reasons": None,
        "due_at": at(AWARE + timedelta(hours=72)),
        "late": False,
        "recorded_at": None,
    }
    frozen["now"] = AWARE + timedelta(hours=80)
    second = notify(client, iid, {"to": "authority", "at": at(frozen["now"])})
    # After the deadline a notice must say why it is late (Art. 33(1)).
    refused(second, 422, "delay_reasons_required")
    second = notify(
        client,
        iid,
        {"to": "authority", "at": at(frozen["now"]), "delay_reasons": ["forensics took longer"]},
    )
    assert second.status_code == 201, second.text
    notices = second.json()["notifications"]
    assert [n["late"] for n in notices] == [False, True]
    assert notices[0] == given
    assert second.json()["not_notified"] == []

    # A late notice: closing needs its reason, once; a closed incident takes nothing more.
    refused(close(client, iid), 422, "late_reason_required")
    closed = close(client, iid, {"late_reason": "the follow-up waited for the forensics"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] == at(frozen["now"])
    assert closed.json()["late_reason"] == "the follow-up waited for the forensics"
    refused(close(client, iid, {"late_reason": "again"}), 409, "incident_closed")
    refused(notify(client, iid, {"to": "public", "at": at(frozen["now"])}), 409, "incident_closed")

    # An authority never told: closing after its deadline without a reason is refused.
    other = create(client, incident())["incident_id"]
    refused(close(client, other), 422, "late_reason_required")

    listed = client.get("/v1/incidents", headers=auth(), params={"limit": 1}).json()
    assert [i["incident_id"] for i in listed["items"]] == [iid]
    rest = client.get("/v1/incidents", headers=auth(), params={"cursor": listed["next"]}).json()
    assert [i["incident_id"] for i in rest["items"]] == [other]
    assert rest["next"] is None
    open_only = client.get("/v1/incidents", headers=auth(), params={"status": "open"}).json()
    assert [i["incident_id"] for i in open_only["items"]] == [other]

    # Every step audited, by name, with no free text in the log.
    entries = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000}).json()
    mine = [e for e in entries["items"] if e["action"].startswith("incident:")]
    assert [(e["action"], e["details"]["incident_id"]) for e in mine] == [
        ("incident:created", iid),
        ("incident:notified", iid),
        ("incident:notified", iid),
        ("incident:closed", iid),
        ("incident:created", other),
    ]
    assert [e["details"].get("late") for e in mine[1:4]] == [False, True, True]
    assert "Ana" not in str(entries)
    assert "forensics" not in str(entries)


def test_processor_and_not_notifiable(client: TestClient, frozen: dict[str, datetime]) -> None:
    record = create(client, incident(controller_role="processor", risk="none"))
    # Art. 33(2): a processor tells its controller at once, whatever the risk.
    assert record["controller_due"] == at(AWARE)
    assert record["authority_due_at"] is None
    assert record["not_notified"] == ["controller"]
    iid = record["incident_id"]
    late = AWARE + timedelta(hours=25)
    refused(
        notify(client, iid, {"to": "controller", "at": at(late)}), 422, "delay_reasons_required"
    )
    resp = notify(client, iid, {"to": "controller", "at": at(late), "delay_reasons": ["weekend"]})
    assert resp.json()["notifications"][0]["late"] is True
    # Within a day of awareness a notice to the controller is not late.
    soon = notify(client, iid, {"to": "controller", "at": at(AWARE + timedelta(hours=20))})
    assert soon.json()["notifications"][1]["late"] is False

    # A controller's risk `none` needs its reason; with it nothing is owed to the authority.
    refused(_raw(client, incident(risk="none")), 422, "not_notifiable_reason_required")
    none = create(client, incident(risk="none", not_notifiable_reason="only hashed ids leaked"))
    assert none["authority_due_at"] is None
    assert none["not_notified"] == []
    # Nothing late, nothing owed: it closes without a body.
    bare = client.post(f"/v1/incidents/{none['incident_id']}/close", headers=auth())
    assert bare.status_code == 200, bare.text
    assert bare.json()["late_reason"] is None


def test_subjects_notice_and_its_exemptions(
    client: TestClient, settings: Settings, frozen: dict[str, datetime]
) -> None:
    high = incident(risk="high")
    # Art. 34(3)(a): confidentiality only, encrypted, keys safe: no notice to the subjects.
    sealed = create(client, high | {"data_encrypted": True})
    assert sealed["subjects_notice_required"] is False
    assert sealed["subjects_notice_exemption"] == "encrypted"
    stolen_key = high | {"data_encrypted": True, "keys_compromised": True}
    assert create(client, stolen_key)["subjects_notice_required"] is True
    assert create(client, high | {"data_encrypted": False})["subjects_notice_required"] is True
    integrity = create(client, high | {"nature": "integrity"})
    assert integrity["subjects_notice_required"] is True
    assert integrity["not_notified"] == ["authority", "subjects"]
    # (b) measures that make the high risk no longer likely, recorded as such.
    measures = high | {"nature": "integrity", "measures": "Backups restored and verified."}
    assert create(client, measures)["subjects_notice_required"] is True
    # The flag alone, with no measures recorded, spares nobody.
    unfounded = high | {"nature": "integrity", "high_risk_no_longer_likely": True}
    assert create(client, unfounded)["subjects_notice_required"] is True
    spared = create(client, measures | {"high_risk_no_longer_likely": True})
    assert spared["subjects_notice_exemption"] == "measures"
    assert spared["subjects_notice_required"] is False
    # (c) disproportionate effort: a public notice instead, which then spares the subjects.
    public = create(client, high | {"nature": "availability", "disproportionate_effort": True})
    assert public["subjects_notice_required"] is True
    assert public["not_notified"] == ["authority", "public"]
    given = notify(client, public["incident_id"], {"to": "public", "at": at(NOW)}).json()
    assert given["subjects_notice_required"] is False
    assert given["subjects_notice_exemption"] == "disproportionate_effort"
    # The data directory touched: with CONSENTRY_MASTER_KEY the key is elsewhere...
    touched = high | {"data_directory": True}
    assert create(client, touched)["keys_compromised"] is False


def test_development_key_file_counts_as_compromised(
    settings: Settings, frozen: dict[str, datetime]
) -> None:
    """With the key-encryption key in the data directory (no CONSENTRY_MASTER_KEY), an incident
    that touches that directory has the key too (API.md, Keys): no encryption exemption."""
    with TestClient(create_app(dataclasses.replace(settings, master_key=""))) as client:
        touched = create(client, incident(risk="high", data_directory=True))
        assert touched["keys_compromised"] is True
        assert touched["keys_compromised_reason"] == "development_key_file"
        assert touched["subjects_notice_required"] is True
        elsewhere = create(client, incident(risk="high", data_encrypted=True))
        assert elsewhere["keys_compromised"] is False
        assert elsewhere["subjects_notice_required"] is False


def test_data_encrypted_is_assumed_only_for_consentrys_own_store(
    client: TestClient, frozen: dict[str, datetime]
) -> None:
    """Consentry seals what it stores, not what it delivered: a breach at a system is taken
    as of unencrypted data unless the report says otherwise."""
    add(client, "warehouse", system("https://warehouse.example.com/in"))
    high = incident(risk="high")
    at_system = create(client, high | {"systems": ["warehouse"]})
    assert at_system["data_encrypted"] is False
    assert at_system["subjects_notice_required"] is True
    assert at_system["subjects_notice_exemption"] is None
    assert at_system["not_notified"] == ["authority", "subjects"]
    # Residents' data read at the system counts as acquired unencrypted (§1798.82).
    residents = {"count": 900, **_acquired(False)}
    read = create(client, incident(systems=["warehouse"], us_ca_residents=residents))
    assert read["us_ca_residents_due_at"] == at(DETECTED + timedelta(days=30))
    # Only Consentry's own store: what it holds is sealed.
    own = create(client, high | {"data_directory": True})
    assert own["data_encrypted"] is True
    assert own["subjects_notice_exemption"] == "encrypted"
    assert own["subjects_notice_required"] is False
    # The store and a system, or neither named: not assumed.
    both = create(client, high | {"data_directory": True, "systems": ["warehouse"]})
    assert both["data_encrypted"] is False
    assert both["subjects_notice_required"] is True
    assert create(client, high)["data_encrypted"] is False
    # Said so by the report: as reported.
    stated = create(client, high | {"systems": ["warehouse"], "data_encrypted": True})
    assert stated["data_encrypted"] is True
    assert stated["subjects_notice_exemption"] == "encrypted"


def test_us_ca_deadlines(client: TestClient, frozen: dict[str, datetime]) -> None:
    residents = {"count": 501, "acquired_unencrypted_or_with_key": True}
    record = create(client, incident(us_ca_residents=residents))
    due = DETECTED + timedelta(days=30)
    assert record["us_ca_residents_due_at"] == at(due)
    # Above 500 residents: a sample to the Attorney General 15 days after the residents' notice.
    assert record["us_ca_ag_due_at"] == at(due + timedelta(days=15))
    assert record["subjects_notice_required"] is True
    assert record["not_notified"] == ["authority", "subjects", "ca_attorney_general"]
    # Residents told early: the Attorney General's clock starts then.
    told = notify(client, record["incident_id"], {"to": "subjects", "at": at(NOW)}).json()
    assert told["us_ca_ag_due_at"] == at(NOW + timedelta(days=15))
    frozen["now"] = NOW + timedelta(days=16)
    late = {"to": "ca_attorney_general", "at": at(frozen["now"])}
    refused(notify(client, record["incident_id"], late), 422, "delay_reasons_required")

    few = create(client, incident(us_ca_residents={"count": 500, **_acquired(True)}))
    assert few["us_ca_residents_due_at"] is not None
    assert few["us_ca_ag_due_at"] is None
    # Encrypted data whose key is safe was not acquired "unencrypted or with its key"...
    sealed = {"count": 900, **_acquired(False)}
    safe = create(client, incident(data_encrypted=True, us_ca_residents=sealed))
    assert safe["us_ca_residents_due_at"] is None
    # ...but unencrypted data that was read is, whatever the flag says.
    plain = incident(data_encrypted=False, us_ca_residents={"count": 900, **_acquired(False)})
    assert create(client, plain)["us_ca_residents_due_at"] is not None
    # A business that only maintains the data tells its owner at once, and the owner the rest.
    keeper = create(client, incident(controller_role="processor", us_ca_residents=residents))
    assert keeper["data_owner_due"] == at(DETECTED)
    assert keeper["us_ca_residents_due_at"] is None
    assert keeper["not_notified"] == ["controller", "data_owner"]


def _acquired(value: bool) -> dict[str, bool]:
    return {"acquired_unencrypted_or_with_key": value}


def test_bad_input_each_has_its_code(client: TestClient, frozen: dict[str, datetime]) -> None:
    future = at(NOW + timedelta(seconds=1))
    for body, field, rule in (
        (incident(detected_at=future, aware_at=future), "detected_at", "in_future"),
        (incident(aware_at=future), "aware_at", "in_future"),
        (
            incident(aware_at=at(DETECTED - timedelta(minutes=1))),
            "aware_at",
            "aware_before_detected",
        ),
        (incident(window={"from": at(AWARE), "to": at(DETECTED)}), "window", "window_reversed"),
        (incident(window={"from": at(DETECTED), "to": future}), "window.to", "in_future"),
    ):
        problem = refused(_raw(client, body), 422, "invalid_incident")
        assert (problem["field"], problem["rule"]) == (field, rule)
    refused(_raw(client, incident(systems=["nowhere"])), 422, "unknown_system")
    refused(_raw(client, incident(risk="none")), 422, "not_notifiable_reason_required")
    refused(_raw(client, incident(risk="severe")), 422, "invalid_request")
    refused(_raw(client, incident(keys_compromised="no")), 422, "invalid_request")
    refused(_raw(client, incident(surprise=1)), 422, "unknown_field")
    # Times without a zone, or that cannot be stored, are the shape's fault.
    refused(_raw(client, incident(detected_at="2026-11-30T08:00:00")), 422, "invalid_request")
    refused(_raw(client, incident(aware_at="0999-12-31T23:59:59Z")), 422, "invalid_request")
    without = incident()
    del without["keys_compromised"]
    refused(_raw(client, without), 422, "invalid_request")

    iid = create(client, incident())["incident_id"]
    refused(
        notify(client, iid, {"to": "press", "at": at(NOW)}), 422, "unknown_notification_recipient"
    )
    problem = refused(
        notify(client, iid, {"to": "authority", "at": future}), 422, "invalid_notification"
    )
    assert problem["rule"] == "in_future"
    before = at(DETECTED - timedelta(hours=1))
    problem = refused(
        notify(client, iid, {"to": "authority", "at": before}), 422, "invalid_notification"
    )
    assert problem["rule"] == "before_detected"
    missing = "inc_" + "0" * 24
    refused(client.get(f"/v1/incidents/{missing}", headers=auth()), 404, "incident_not_found")
    refused(client.get("/v1/incidents/x%27;--", headers=auth()), 404, "incident_not_found")
    refused(notify(client, missing, {"to": "authority", "at": at(NOW)}), 404, "incident_not_found")
    refused(close(client, missing), 404, "incident_not_found")
    for forged in ("eyJhZnRlciI6LTF9", "eyJhZnRlciI6ImEifQ", "not-a-cursor", "eyJzZXEiOjF9"):
        resp = client.get("/v1/incidents", headers=auth(), params={"cursor": forged})
        refused(resp, 400, "invalid_cursor")
    # Nothing refused was recorded.
    assert [
        i["incident_id"] for i in client.get("/v1/incidents", headers=auth()).json()["items"]
    ] == [iid]
