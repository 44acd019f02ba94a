"""Treatments: pseudonyms are keyed and stable, tokens reversible only through detokenize."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from consentry.ingest.models import Treatment
from consentry.ingest.treatments import DROPPED, Item
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import token_vault
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key

EMAIL = "ana.tokens@example.com"


def new_subject(rt: Runtime, email: str) -> str:
    ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, email),))
    with rt.store.write() as conn:
        return rt.subjects.resolve(conn, ref, actor="test").subject.subject_id


def treat(
    rt: Runtime, kind: Treatment, subject_id: str, field: str, values: list[object]
) -> list[object]:
    with rt.store.write() as conn:
        sealer = rt.subject_keys.sealer(conn, subject_id)
        items = [Item(subject_id, field, v, sealer) for v in values]
        return rt.treatments[kind].treat(conn, items)


def test_keep_and_drop(runtime: Runtime) -> None:
    sid = new_subject(runtime, EMAIL)
    assert treat(runtime, Treatment.KEEP, sid, "url", ["/a", 2]) == ["/a", 2]
    assert treat(runtime, Treatment.DROP, sid, "debug", [True]) == [DROPPED]


def test_pseudonyms_are_keyed_stable_and_per_field(settings: Settings) -> None:
    rt = Runtime(settings)
    try:
        sid = new_subject(rt, EMAIL)
        first = treat(rt, Treatment.PSEUDONYMISE, sid, "email", [EMAIL, EMAIL, "bo@example.com"])
        other_field = treat(rt, Treatment.PSEUDONYMISE, sid, "contact", [EMAIL])
    finally:
        rt.close()
    assert first[0] == first[1] != first[2]
    assert other_field[0] != first[0]
    # Never a plain hash of the value, with or without the field name.
    assert first[0] not in {
        hashlib.sha256(EMAIL.encode()).hexdigest(),
        hashlib.sha256(b"email\x00" + EMAIL.encode()).hexdigest(),
    }
    restarted = Runtime(settings)
    try:
        again = treat(restarted, Treatment.PSEUDONYMISE, sid, "email", [EMAIL])
    finally:
        restarted.close()
    assert again[0] == first[0]


def test_tokens_reuse_and_seal(runtime: Runtime) -> None:
    ana = new_subject(runtime, EMAIL)
    bo = new_subject(runtime, "bo.tokens@example.com")
    tokens = treat(runtime, Treatment.TOKENISE, ana, "card", ["4111111111111111"] * 2 + ["5500"])
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(str(t).startswith("tok_") for t in tokens)
    # The same value of another subject is another token: tokens cannot join people.
    assert treat(runtime, Treatment.TOKENISE, bo, "card", ["4111111111111111"])[0] != tokens[0]
    with runtime.store.read() as conn:
        rows = conn.execute(token_vault.select()).all()
    assert len(rows) == 3
    for row in rows:
        assert b"4111111111111111" not in bytes(row.value_ct)
        assert b"4111111111111111" not in bytes(row.value_index)


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
