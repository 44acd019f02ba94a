"""The TCF vendor gate (API.md, Client libraries and Data map and delivery): a system with a
`tcf_vendor_id` gets a subject's data only while that GVL vendor has consent in the
subject's latest TC string; otherwise the delivery is refused as `tcf_vendor_no_consent`,
counted and audited like the other gates. TC strings made by @iabtcf/core (SCENARIOS in
tests/consent/tcf/make_vectors.mjs)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.consent.test_gpc_tcf import scenario
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, system, worker
from tests.ingest.test_pipeline import NOTICE, send, who

# VendorConsents 2 and 7, vendor 3 by legitimate interest only; the publisher segment
# consents to purposes 1, 8 and 9 (analytics).
NARROWS = scenario("publisher_narrows")["tcString"]
# VendorConsents 3 only, vendor 2 by legitimate interest only; analytics not consented.
WIDENS = scenario("publisher_widens")["tcString"]


def consent(client: TestClient, name: str, tcf: str | None = None, **purposes: str) -> Any:
    body: dict[str, Any] = {"subject": who(name), "purposes": purposes, "source": "web"}
    body["notice"] = NOTICE
    if tcf is not None:
        body["tcf"] = tcf
    resp = client.post("/v1/consents", headers=auth(), json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def delivery(client: TestClient, system_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/systems/{system_id}", headers=auth())
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["delivery"])


def refusals(client: TestClient) -> list[dict[str, Any]]:
    entries = client.get("/v1/audit/entries", headers=auth()).json()["items"]
    return [e["details"] for e in entries if e["action"] == "delivery:refused"]


def test_only_vendors_with_consent_in_the_tc_string_get_data(gateway: TestClient) -> None:
    """Vendor consent decides: a vendor with legitimate interest only, or a subject with no
    TC string at all, gets nothing; a system without a vendor id is not gated."""
    ana = consent(gateway, "ana", NARROWS)
    assert ana["purposes"]["analytics"]["state"] == "granted"
    consent(gateway, "bea", analytics="granted")
    consent(gateway, "cy", WIDENS, analytics="granted")
    with receiver() as v2, receiver() as v3, receiver() as plain:
        add(gateway, "vendor2", system(v2.url, tcf_vendor_id=2))
        add(gateway, "vendor3", system(v3.url, tcf_vendor_id=3))
        add(gateway, "plain", system(plain.url))
        results = send(gateway, [page_view("e-ana", "ana"), page_view("e-bea", "bea")])
        results += send(gateway, [page_view("e-cy", "cy")])
        assert [r["status"] for r in results] == ["accepted"] * 3
        worker(gateway).run_once()
        assert [e["event_id"] for e in v2.events()] == ["e-ana"]
        assert [e["event_id"] for e in v3.events()] == ["e-cy"]
        assert sorted(e["event_id"] for e in plain.events()) == ["e-ana", "e-bea", "e-cy"]
    assert delivery(gateway, "vendor2")["refused"] == {"tcf_vendor_no_consent": 2}
    assert delivery(gateway, "vendor3")["refused"] == {"tcf_vendor_no_consent": 2}
    assert delivery(gateway, "plain")["refused"] == {}
    audited: dict[str, int] = {}
    for details in refusals(gateway):
        for system_id, reasons in details.items():
            audited[system_id] = audited.get(system_id, 0) + reasons["tcf_vendor_no_consent"]
    assert audited == {"vendor2": 2, "vendor3": 2}


def test_the_latest_tc_string_decides_at_send_time(gateway: TestClient) -> None:
    """The gate is decided again when a delivery is sent, on the subject's state at the
    version read then (the consistency rule of consent): a later TC string without the
    vendor stops what was pending, and one with it lets new events through again."""
    consent(gateway, "ana", NARROWS)
    with receiver() as r:
        add(gateway, "vendor2", system(r.url, tcf_vendor_id=2))
        assert send(gateway, [page_view("e1", "ana")])[0]["status"] == "accepted"
        assert delivery(gateway, "vendor2")["pending"] == 1
        # Analytics stays granted (explicit entry); vendor 2 keeps legitimate interest only.
        later = consent(gateway, "ana", WIDENS, analytics="granted")
        assert later["purposes"]["analytics"]["state"] == "granted"
        worker(gateway).run_once()
        assert r.attempts == 0
        assert delivery(gateway, "vendor2") == {
            "pending": 0,
            "dead": 0,
            "refused": {"tcf_vendor_no_consent": 1},
        }
        assert send(gateway, [page_view("e2", "ana")])[0]["status"] == "accepted"
        worker(gateway).run_once()
        assert r.attempts == 0
        assert delivery(gateway, "vendor2")["refused"] == {"tcf_vendor_no_consent": 2}
        consent(gateway, "ana", NARROWS)
        assert send(gateway, [page_view("e3", "ana")])[0]["status"] == "accepted"
        worker(gateway).run_once()
        assert [e["event_id"] for e in r.events()] == ["e3"]


def test_a_change_of_vendor_consents_is_audited(gateway: TestClient) -> None:
    """A TC string whose vendor consents differ from the subject's latest is audited
    (`consent:tcf_vendors:set`, by count and digest: the set itself is on the subject's
    row); the same vendor consents again add no entry."""
    first = consent(gateway, "ana", NARROWS)
    consent(gateway, "ana", NARROWS)
    consent(gateway, "ana", WIDENS, analytics="granted")
    entries = gateway.get("/v1/audit/entries", headers=auth()).json()["items"]
    sets = [e for e in entries if e["action"] == "consent:tcf_vendors:set"]
    assert [e["details"]["vendors"] for e in sets] == [2, 1]
    assert all(e["subject_id"] == first["subject_id"] for e in sets)
    assert all(set(e["details"]) == {"vendors", "sha256"} for e in sets)
