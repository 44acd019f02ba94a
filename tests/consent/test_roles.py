"""API.md Conventions, for the purpose, notice and consent routes: who may call what."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.consent.helpers import NOTICE, publish, ref
from tests.http.test_conventions import assert_problem, make_key


def test_consent_routes_follow_the_role_table(client: TestClient) -> None:
    """collector: "write and check consents"; operator: "consent reads"; analyst and auditor
    neither; configuration (purposes, notices) is the dpo's; each write names its actor."""
    publish(client)
    keys = {
        role: make_key(client, role)
        for role in ("collector", "operator", "analyst", "auditor", "dpo")
    }
    collector = auth(keys["collector"])
    write = {
        "subject": ref("role.test"),
        "purposes": {"analytics": "granted"},
        "source": "web",
        "notice": NOTICE,
    }
    resp = client.post("/v1/consents", headers=collector, json=write)
    assert resp.status_code == 200, resp.text
    subject_id = resp.json()["subject_id"]
    check = {"subject": ref("role.test"), "purpose": "analytics"}
    assert client.post("/v1/consents/check", headers=collector, json=check).json()["allowed"]
    withdrawal = {"subject": ref("role.test"), "purposes": ["marketing"], "source": "web"}
    assert client.post("/v1/consents/withdraw", headers=collector, json=withdrawal).is_success
    token = client.get(f"/v1/subjects/{subject_id}/consent/token", headers=collector)
    assert token.status_code == 200, token.text
    reads = (f"/v1/subjects/{subject_id}/consent", f"/v1/subjects/{subject_id}/consent/history")
    for url in reads:
        assert_problem(client.get(url, headers=collector), 403, "forbidden")
        assert client.get(url, headers=auth(keys["operator"])).status_code == 200
        assert client.get(url, headers=auth(keys["dpo"])).status_code == 200
    history = client.get(reads[1], headers=auth(keys["operator"])).json()["items"]
    key_id = keys["collector"].split("_")[1]
    assert {entry["actor"] for entry in history} == {f"key:{key_id}"}
    for role in ("operator", "analyst", "auditor"):
        headers = auth(keys[role])
        assert_problem(client.post("/v1/consents", headers=headers, json=write), 403, "forbidden")
        resp = client.post("/v1/consents/withdraw", headers=headers, json=withdrawal)
        assert_problem(resp, 403, "forbidden")
    for role in ("analyst", "auditor"):
        resp = client.post("/v1/consents/check", headers=auth(keys[role]), json=check)
        assert_problem(resp, 403, "forbidden")
    purpose = {"name": "Surveys", "legal_basis": "consent", "retention_days": 30}
    notice = {"version": "2", "text": "Surveys notice.", "purposes": ["analytics"]}
    for role in ("collector", "operator", "analyst", "auditor"):
        headers = auth(keys[role])
        assert client.get("/v1/purposes", headers=headers).status_code == 200
        resp = client.put("/v1/purposes/surveys", headers=headers, json=purpose)
        assert_problem(resp, 403, "forbidden")
        resp = client.put("/v1/notices/privacy", headers=headers, json=notice)
        assert_problem(resp, 403, "forbidden")
    dpo = auth(keys["dpo"])
    assert client.put("/v1/purposes/surveys", headers=dpo, json=purpose).status_code == 201
    assert client.put("/v1/notices/privacy", headers=dpo, json=notice).status_code == 201
    assert_problem(client.post("/v1/consents", json=write), 401, "unauthenticated")
