"""Bad input over HTTP, on both back-ends: the events batch under the JSON rules (refused whole,
nothing stored), per-event details without values, consent evidence within the rules and its
history readable, the erased subject's token, forged request-list cursors."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import auth
from tests.http.test_conventions import assert_problem
from tests.ingest.test_pipeline import CONSENT_PURPOSES, SCHEMA, event, grant, who

JSON = auth() | {"Content-Type": "application/json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The runner is driven by the tests (an erasure runs when they call run_pending); groups
    of one subject are shown, as these tests read single values back."""
    return dataclasses.replace(settings, dsr_poll_seconds=0, min_group_subjects=1)


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES},
    )
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    grant(client, who("ana"), "analytics")
    return client


def batch_bytes(*events: bytes) -> bytes:
    return b'{"events": [' + b",".join(events) + b"]}"


def good(event_id: str) -> bytes:
    return json.dumps(event(event_id, who("ana"))).encode()


def with_properties(event_id: str, properties: bytes) -> bytes:
    """An event whose properties are the raw JSON given (so it may break the JSON rules)."""
    head = json.dumps(event(event_id, who("ana")) | {"properties": {}}).encode()
    return head.replace(b'"properties": {}', b'"properties": ' + properties)


def post_raw(client: TestClient, body: bytes) -> Any:
    return client.post("/v1/events", headers=JSON, content=body)


def stored(client: TestClient, event_id: str) -> bool:
    """Whether the event is stored: sending it again says duplicate_event."""
    results = client.post(
        "/v1/events", headers=auth(), json={"events": [event(event_id, who("ana"))]}
    )
    assert results.status_code == 200, results.text
    return bool(results.json()["results"][0].get("code") == "duplicate_event")


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        (b'{"url": ' + b"[" * 40 + b"]" * 40 + b"}", "json_too_deep"),
        (b'{"url": ' + b"[" * 300 + b"]" * 300 + b"}", "json_too_deep"),
        (b'{"url": ' + b"{" * 0 + b"[" * 5000 + b"]" * 5000 + b"}", "json_too_deep"),
        (b'{"url": "/a", "zzz": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}", "json_too_deep"),
        (b'{"url": "/caf\xe9"}', "invalid_utf8"),
        (b'{"url": "\\udc00"}', "invalid_utf8"),
        (b'{"url": "/", "count": 9223372036854775808}', "invalid_number"),
        (b'{"url": "/", "count": -9223372036854775809}', "invalid_number"),
        (b'{"url": "/", "count": 1e400}', "invalid_number"),
        (b'{"url": "/", "count": NaN}', "invalid_number"),
        (b'{"url": "/", "zzz": 123456789012345678901234567890}', "invalid_number"),
    ],
    ids=[
        "deep40",
        "deep300",
        "deep5000",
        "deep_unknown_field",
        "latin1",
        "lone_surrogate",
        "int_over",
        "int_under",
        "float_over",
        "nan",
        "big_int_unknown_field",
    ],
)
def test_an_event_breaking_the_json_rules_refuses_the_batch_whole(
    ready: TestClient, properties: bytes, code: str
) -> None:
    """Same answer as on every other route, and nothing of the batch is stored."""
    body = batch_bytes(good("ok-1"), with_properties("bad-1", properties))
    assert_problem(post_raw(ready, body), 400, code)
    assert not stored(ready, "ok-1")


def test_an_event_nested_in_its_envelope_refuses_the_batch(ready: TestClient) -> None:
    deep = b'{"event_id": "x", "extra": ' + b"[" * 400 + b"]" * 400 + b"}"
    assert_problem(post_raw(ready, batch_bytes(good("ok-2"), deep)), 400, "json_too_deep")
    deep_event = b"[" * 50 + b"]" * 50
    assert_problem(post_raw(ready, batch_bytes(good("ok-2"), deep_event)), 400, "json_too_deep")
    assert not stored(ready, "ok-2")


def test_integers_at_the_64_bit_edges_are_kept_exactly(ready: TestClient) -> None:
    edges = [2**63 - 1, -(2**63), 2**62 + 1, 2**62 + 2]
    events = [
        event(f"edge-{n}", who("ana"), properties={"url": "/", "count": value})
        for n, value in enumerate(edges)
    ]
    resp = ready.post("/v1/events", headers=auth(), json={"events": events})
    assert resp.json()["accepted"] == len(edges), resp.text
    query = {"purpose": "analytics", "event_type": "page_view", "group_by": ["count"]}
    resp = ready.post("/v1/query", headers=auth(), json=query | {"metric": "count"})
    assert resp.status_code == 200, resp.text
    rows = resp.json()["rows"]
    # Each its own group, as an integer: none turned into a float and merged with another.
    assert [row["count"] for row in rows] == sorted(edges)
    assert all(type(row["count"]) is int and row["value"] == 1 for row in rows)


def test_rejected_events_say_which_field_and_rule_never_the_value(ready: TestClient) -> None:
    personal = "ana.private@example.com"
    events = [
        event("d1", who("ana"), properties={"url": "/", "count": personal}),
        event("d2", who("ana"), properties={"url": "/", "ana_lindqvist": personal}),
        event("d3", who("ana"), properties={"count": 1}),
        event("d4", who("ana")) | {"occurred_at": "2026-11-20T10:00:00"},
        {"event_type": "page_view", "subject": who("ana"), "occurred_at": "2026-11-20T10:00:00Z"},
        event("d6", who("nobody")),
        event("d7", who("ana"), event_type="nothing_like_it"),
        event("d8", {"identities": [{"type": "email", "value": "not an address " + personal}]}),
        event("d9", who("ana"), properties={"url": "/", personal: 1}),
        event("d10", who("ana"), properties={"url": "/", "email": 5}),
    ]
    resp = ready.post("/v1/events", headers=auth(), json={"events": events})
    assert resp.status_code == 200, resp.text
    assert personal not in resp.text
    results = resp.json()["results"]
    assert all(r["status"] == "rejected" for r in results)
    assert all(isinstance(r["detail"], str) and r["detail"] for r in results)
    detail = {r["event_id"]: r["detail"] for r in results if r["event_id"]}
    code = {r["event_id"]: r["code"] for r in results if r["event_id"]}
    assert code["d1"] == "invalid_field"
    assert detail["d1"] == "properties.count: expected int, got str"
    # A key not in the schema may itself be personal (a name used as a key): never repeated.
    assert "lindqvist" not in resp.text
    assert (code["d2"], detail["d2"]) == (
        "unknown_field",
        "properties: a property not in the schema",
    )
    assert (code["d3"], detail["d3"]) == ("missing_field", "properties.url is required")
    assert detail["d4"] == "occurred_at is missing or has no time zone"
    assert results[4]["detail"] == "event_id is missing"
    assert code["d6"] == "no_consent"
    assert code["d7"] == "unknown_event_type"
    assert detail["d8"] == "subject: invalid_identity"
    assert detail["d9"] == "properties: a property not in the schema"
    assert detail["d10"] == "properties.email: expected str, got int"
    accepted = ready.post("/v1/events", headers=auth(), json={"events": [event("d0", who("ana"))]})
    assert "detail" not in accepted.json()["results"][0]


def consent_body(evidence: Any) -> dict[str, Any]:
    return {
        "subject": who("eve"),
        "purposes": {"analytics": "granted"},
        "source": "web",
        "notice": {"id": "main", "version": "1"},
        "evidence": evidence,
    }


def nested(depth: int) -> Any:
    value: Any = "proof"
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize("depth", [33, 253, 330, 2000])
def test_deep_evidence_is_refused_and_history_stays_readable(ready: TestClient, depth: int) -> None:
    """Evidence 253-330 deep was stored, then every history read of the subject failed."""
    deep = b'{"k": ' * (depth - 1) + b'"proof"' + b"}" * (depth - 1)
    body = json.dumps(consent_body("E")).encode().replace(b'"E"', deep)
    resp = ready.post("/v1/consents", headers=JSON, content=body)
    assert_problem(resp, 400, "json_too_deep")
    resp = ready.post("/v1/consents", headers=auth(), json=consent_body(nested(20)))
    assert resp.status_code == 200, resp.text
    subject_id = resp.json()["subject_id"]
    history = ready.get(f"/v1/subjects/{subject_id}/consent/history", headers=auth())
    assert history.status_code == 200, history.text
    assert history.json()["items"][-1]["evidence"] == nested(20)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"2e308"])
def test_non_finite_evidence_is_refused_not_stored_as_null(
    ready: TestClient, number: bytes
) -> None:
    body = json.dumps(consent_body({"score": "N"})).encode().replace(b'"N"', number)
    assert_problem(ready.post("/v1/consents", headers=JSON, content=body), 400, "invalid_number")
    resp = ready.post(
        "/v1/consents/check",
        headers=auth(),
        json={"subject": who("eve"), "purpose": "analytics"},
    )
    assert resp.json()["reason"] == "never_asked"


def test_the_erased_subjects_token_is_410_like_its_other_consent_reads(ready: TestClient) -> None:
    subject_id = grant(ready, who("zoe"), "analytics")["subject_id"]
    assert ready.get(f"/v1/subjects/{subject_id}/consent/token", headers=auth()).status_code == 200
    resp = ready.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": "erasure",
            "subject": who("zoe"),
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )
    assert resp.status_code == 202, resp.text
    runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    runtime.runner.run_pending()
    history = ready.get(f"/v1/subjects/{subject_id}/consent/history", headers=auth())
    assert history.status_code == 410
    state = ready.get(f"/v1/subjects/{subject_id}/consent", headers=auth())
    assert_problem(state, 410, "subject_erased")
    body = assert_problem(
        ready.get(f"/v1/subjects/{subject_id}/consent/token", headers=auth()), 410, "subject_erased"
    )
    assert body["subject_id"] == subject_id


def cursor_of(position: Any) -> str:
    raw = json.dumps(position).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [
        {"after": 5},
        {"after": None},
        {"after": {"x": 1}},
        {"after": ["req_"]},
        {"after": "req_\u0000"},
        {"after": "x" * 100},
        {"after": "req_zz"},
        {"after": "req_0", "more": 1},
        [1],
    ],
)
def test_the_requests_list_refuses_forged_cursors(ready: TestClient, position: Any) -> None:
    for n in range(3):
        resp = ready.post(
            "/v1/requests",
            headers=auth(),
            json={"type": "access", "subject": who(f"r{n}"), "jurisdiction": "EU"},
        )
        assert resp.status_code == 202, resp.text
    first = ready.get("/v1/requests", headers=auth(), params={"limit": 2}).json()
    assert first["next"]
    assert (
        ready.get("/v1/requests", headers=auth(), params={"cursor": first["next"]}).status_code
        == 200
    )
    resp = ready.get("/v1/requests", headers=auth(), params={"cursor": cursor_of(position)})
    assert_problem(resp, 400, "invalid_cursor")
