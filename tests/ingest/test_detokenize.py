"""ingest/detokenize.py, in process and through `POST /v1/tokens/detokenize` on both
back-ends: the only road from a token back to its value, for admin and dpo, each value read
audited per subject with the reason sealed; a destroyed key leaves a token meaningless."""

from __future__ import annotations

from fastapi.testclient import TestClient

from consentry.audit import log as audit
from consentry.ingest.detokenize import detokenize
from consentry.ingest.models import Treatment
from consentry.runtime import Runtime
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_treatments import EMAIL, new_subject, treat


def test_detokenize_is_for_admin_and_dpo_and_audited(client: TestClient) -> None:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    sid = new_subject(rt, EMAIL)
    token = str(treat(rt, Treatment.TOKENISE, sid, "card", ["4111111111111111"])[0])
    body = {"tokens": [token, "tok_unknown"], "reason": "chargeback dispute 1234"}
    for role in ("analyst", "collector", "operator", "auditor"):
        resp = client.post("/v1/tokens/detokenize", headers=auth(make_key(client, role)), json=body)
        assert_problem(resp, 403, "forbidden")
    dpo = make_key(client, "dpo")
    resp = client.post("/v1/tokens/detokenize", headers=auth(dpo), json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"values": {token: "4111111111111111"}, "unknown": ["tok_unknown"]}
    entries = client.get(
        "/v1/audit/entries", headers=auth(), params={"subject_id": sid, "limit": 100}
    ).json()["items"]
    detokenized = [e for e in entries if e["action"] == "data:detokenized"]
    assert len(detokenized) == 1
    details = detokenized[0]["details"]
    assert {k: v for k, v in details.items() if k != "sealed"} == {"token": token, "field": "card"}
    # The operator's reason may name the person: it is sealed under the subject's key.
    assert "chargeback" not in str(entries)
    assert details["sealed"]
    assert "4111111111111111" not in str(entries)
    assert_problem(
        client.post("/v1/tokens/detokenize", headers=auth(dpo), json={"tokens": []}),
        422,
        "invalid_request",
    )


def test_a_destroyed_key_makes_tokens_meaningless(client: TestClient) -> None:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    sid = new_subject(rt, EMAIL)
    token = str(treat(rt, Treatment.TOKENISE, sid, "card", ["4111111111111111"])[0])
    with rt.store.write() as conn:
        rt.subject_keys.destroy(conn, sid)
    resp = client.post(
        "/v1/tokens/detokenize", headers=auth(), json={"tokens": [token], "reason": "test"}
    )
    assert resp.json() == {"values": {}, "unknown": [token]}


def test_each_token_is_read_and_audited_once(runtime: Runtime) -> None:
    sid = new_subject(runtime, EMAIL)
    token = str(treat(runtime, Treatment.TOKENISE, sid, "card", ["4111111111111111"])[0])
    with runtime.store.write() as conn:
        values, unknown = detokenize(
            conn,
            runtime.subject_keys,
            [token, "tok_unknown", token, "tok_unknown"],
            actor="test",
            reason="dispute",
        )
    assert values == {token: "4111111111111111"}
    assert unknown == ["tok_unknown"]
    with runtime.store.read() as conn:
        found = audit.entries(conn, subject_id=sid, limit=1000)
    entries = [e for e, _leaf in found if e.action == "data:detokenized"]
    assert len(entries) == 1
    assert entries[0].actor == "test"
