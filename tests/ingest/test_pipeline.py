"""POST /v1/events (both back-ends): every reason code of API.md in its order, minimisation,
treatments before storage, batch-level refusals."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.runtime import Runtime
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key

NOTICE = {"id": "main", "version": "1"}
CONSENT_PURPOSES = [
    "analytics",
    "personalization",
    "marketing",
    "advertising",
    "location",
    "third_party_sharing",
]
SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", "personalization"],
    "fields": {
        "url": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "required": True,
        },
        "email": {"type": "string", "category": "user.contact.email", "treatment": "pseudonymise"},
        "message": {"type": "string", "category": "user.content", "treatment": "redact"},
        "card": {"type": "string", "category": "user.financial", "treatment": "tokenise"},
        "offer": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "purposes": ["personalization"],
        },
        "debug": {"type": "boolean", "category": "system.operations", "treatment": "drop"},
        "count": {"type": "integer", "category": "system.operations", "treatment": "keep"},
    },
}


def with_page_views(client: TestClient) -> TestClient:
    """The gateway `client` serves, given the notice of CONSENT_PURPOSES and the page_view
    schema (the set-up of most gateway fixtures)."""
    client.put(
        "/v1/notices/main",
        headers=auth(),
        json={"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES},
    )
    assert client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA).status_code == 201
    return client


def who(name: str, kind: str = "email") -> dict[str, Any]:
    value = f"{name}@example.com" if kind == "email" else f"{kind}-{name}"
    return {"identities": [{"type": kind, "value": value}]}


def event(event_id: str, subject: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "event_id": event_id,
        "event_type": "page_view",
        "occurred_at": "2026-11-20T10:00:00Z",
        "subject": subject,
        "properties": {"url": "/home"},
    }
    return body | extra


def send(client: TestClient, events: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    resp = client.post(
        "/v1/events", headers=auth() | kw.pop("headers", {}), json={"events": events}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] + body["rejected"] == len(events)
    return list(body["results"])


def grant(client: TestClient, subject: dict[str, Any], *purposes: str, **extra: Any) -> Any:
    resp = client.post(
        "/v1/consents",
        headers=auth(),
        json={
            "subject": subject,
            "purposes": dict.fromkeys(purposes, "granted"),
            "source": "web",
            "notice": NOTICE,
        }
        | extra,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def codes(results: list[dict[str, Any]]) -> list[str | None]:
    return [r.get("code") for r in results]


def test_accepted_events_name_their_purposes(ready: TestClient) -> None:
    """An event is stored for `schema purposes ∩ purposes the subject allows now`."""
    grant(ready, who("ana"), "analytics")
    results = send(ready, [event("e1", who("ana"))])
    assert results == [{"event_id": "e1", "status": "accepted", "purposes": ["analytics"]}]


def test_envelope_and_schema_codes_in_order(ready: TestClient) -> None:
    """invalid_event, unknown_event_type, duplicate_event, unknown_field, missing_field,
    invalid_field: the first that applies wins (an unconsented subject throughout)."""
    nobody = who("nobody")
    results = send(
        ready,
        [
            {"event_type": "page_view", "occurred_at": "2026-11-20T10:00:00Z", "subject": nobody},
            event("a2", nobody) | {"occurred_at": "not a time"},
            event("a3", nobody) | {"subject": {"identities": []}},
            event("a4", nobody) | {"colour": "red"},
            event("a5", nobody, event_type="unknown_type", properties={"zzz": 1}),
            event("a6", nobody, properties={"url": "/", "zzz": 1}),
            event("a7", nobody, properties={"count": 1}),
            event("a8", nobody, properties={"url": "/", "count": "one"}),
            event("a9", nobody),
            "not an object",
        ],
    )
    assert codes(results) == [
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "invalid_event",
        "unknown_event_type",
        "unknown_field",
        "missing_field",
        "invalid_field",
        "no_consent",
        "invalid_event",
    ]
    assert all(r["status"] == "rejected" and r["purposes"] == [] for r in results)
    assert results[0]["event_id"] is None


def test_duplicates_in_the_batch_and_stored(ready: TestClient) -> None:
    grant(ready, who("bo"), "analytics")
    first = send(ready, [event("d1", who("bo")), event("d1", who("bo"))])
    assert codes(first) == [None, "duplicate_event"]
    assert codes(send(ready, [event("d1", who("bo"))])) == ["duplicate_event"]


def test_consent_codes(ready: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """invalid_consent_token, stale_consent_token, no_consent; and a withdrawal bites."""
    token = grant(ready, who("cy"), "analytics")["token"]
    assert codes(send(ready, [event("c1", who("cy"), consent_token=token)])) == [None]
    assert codes(send(ready, [event("c2", who("cy"), consent_token="x.y.z")])) == [
        "invalid_consent_token"
    ]
    other = grant(ready, who("dee"), "analytics")["token"]
    assert codes(send(ready, [event("c3", who("cy"), consent_token=other)])) == [
        "invalid_consent_token"
    ]
    grant(ready, who("cy"), "personalization")
    assert codes(send(ready, [event("c4", who("cy"), consent_token=token)])) == [
        "stale_consent_token"
    ]
    ready.post(
        "/v1/consents/withdraw", headers=auth(), json={"subject": who("cy"), "purposes": "all"}
    )
    assert codes(send(ready, [event("c5", who("cy"))])) == ["no_consent"]


def test_expired_token_and_expired_consent(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:

    token = grant(ready, who("eve"), "analytics")["token"]
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=2))
    assert codes(send(ready, [event("x1", who("eve"), consent_token=token)])) == [
        "expired_consent_token"
    ]
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=400))
    assert codes(send(ready, [event("x2", who("eve"))])) == ["expired_consent"]


def test_erased_and_restricted_come_before_consent(ready: TestClient) -> None:
    """subject_erased and restricted are tested before any token or consent code."""
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    erased_id = grant(ready, who("fay"), "analytics")["subject_id"]
    restricted_id = grant(ready, who("gus"), "analytics")["subject_id"]
    for subject_id, flag in ((erased_id, "erased"), (restricted_id, "restricted")):
        state = rt.consent_cache.get(subject_id)
        assert state is not None
        rt.consent_cache.put(dataclasses.replace(state, **{flag: True}))
    results = send(
        ready,
        [
            event("f1", who("fay"), consent_token="bad"),
            event("g1", who("gus"), consent_token="bad"),
        ],
    )
    assert codes(results) == ["subject_erased", "restricted"]


def test_eprivacy_for_cookie_only_subjects(ready: TestClient) -> None:
    """An EU/UK subject known only by cookie_id or device_id: purposes narrow to consent and
    strictly necessary ones; none left -> eprivacy_consent_required."""
    fields = {k: v for k, v in SCHEMA["fields"].items() if k != "offer"}
    contract: dict[str, Any] = {"purposes": ["service_delivery"], "fields": fields}
    assert ready.put("/v1/schemas/checkout", headers=auth(), json=contract).status_code == 201
    cookie = who("c00k1e", "cookie_id")
    results = send(
        ready,
        [
            event("p1", cookie, event_type="checkout"),
            event("p2", who("hal"), event_type="checkout"),
        ],
    )
    assert codes(results) == ["eprivacy_consent_required", None]
    assert results[1]["purposes"] == ["service_delivery"]
    security: dict[str, Any] = {"purposes": ["security"], "fields": fields}
    assert ready.put("/v1/schemas/login", headers=auth(), json=security).status_code == 201
    assert codes(send(ready, [event("p3", cookie, event_type="login")])) == [None]


def test_fields_with_their_own_purposes_and_drops(ready: TestClient) -> None:
    """A field with its own purposes is kept only when the subject allows one of them."""
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    grant(ready, who("ida"), "analytics")
    props = {"url": "/", "offer": "spring", "debug": True, "count": 3}
    send(ready, [event("o1", who("ida"), properties=props)])
    grant(ready, who("ida"), "personalization")
    send(ready, [event("o2", who("ida"), properties=props)])
    with rt.store.read() as conn:
        rows = {
            r.event_id: r
            for r in conn.exec_driver_sql(
                "SELECT event_id, properties, purposes, field_purposes FROM events"
            )
        }
    assert "offer" not in rows["o1"].properties
    assert "debug" not in rows["o1"].properties
    assert json.loads(rows["o2"].properties)["offer"] == "spring"
    assert json.loads(rows["o2"].field_purposes) == {"offer": ["personalization"]}


def test_batch_level_refusals(ready: TestClient) -> None:
    h = auth() | {"Content-Type": "application/json"}
    assert_problem(ready.post("/v1/events", headers=h, content=b"{nope"), 400, "malformed_json")
    assert_problem(ready.post("/v1/events", headers=auth(), json=[1]), 422, "body_not_object")
    assert_problem(
        ready.post("/v1/events", headers=auth(), json={"events": 3}), 422, "invalid_batch"
    )
    assert_problem(
        ready.post("/v1/events", headers=auth(), json={"events": [{}] * 1001}),
        422,
        "batch_too_large",
    )
    big = b'{"events": [' + b",".join([b'{"event_id": "' + b"x" * 2000 + b'"}'] * 600) + b"]}"
    assert_problem(ready.post("/v1/events", headers=h, content=big), 413, "payload_too_large")
    assert_problem(
        ready.post("/v1/events", headers=auth(make_key(ready, "analyst")), json={"events": []}),
        403,
        "forbidden",
    )


def test_gpc_on_a_batch_opts_out_of_sale_and_share(ready: TestClient) -> None:
    """GPC on an events batch records `denied` (source gpc) for every sale_or_share purpose."""
    grant(ready, who("jo"), "analytics", "advertising")
    send(ready, [event("g1", who("jo"))], headers={"Sec-GPC": "1"})
    answer = ready.post(
        "/v1/consents/check", headers=auth(), json={"subject": who("jo"), "purpose": "advertising"}
    ).json()
    assert answer["reason"] == "denied"


def test_gpc_for_an_unknown_subject_id_refuses_only_that_event(ready: TestClient) -> None:
    grant(ready, who("kai"), "analytics")
    ghost = {"subject_id": "sub_000000000000000000000000"}
    results = send(ready, [event("u1", ghost), event("u2", who("kai"))], headers={"Sec-GPC": "1"})
    assert codes(results) == ["invalid_event", None]


def test_a_repeated_gpc_signal_adds_no_entry_and_keeps_tokens_fresh(ready: TestClient) -> None:
    """A browser sends Sec-GPC: 1 on every request; only the first changes the ledger."""
    body = grant(ready, who("lou"), "analytics")
    send(ready, [event("r1", who("lou"))], headers={"Sec-GPC": "1"})
    token = ready.get(f"/v1/subjects/{body['subject_id']}/consent/token", headers=auth()).json()
    for n in range(3):
        results = send(
            ready,
            [event(f"r{n + 2}", who("lou"), consent_token=token["token"])],
            headers={"Sec-GPC": "1"},
        )
        assert codes(results) == [None]
    state = ready.get(f"/v1/subjects/{body['subject_id']}/consent", headers=auth()).json()
    assert state["version"] == token["version"]
    assert state["purposes"]["advertising"]["source"] == "gpc"


def test_a_copy_of_a_refused_event_is_judged_on_its_own(ready: TestClient) -> None:
    """duplicate_event: "an event_id already stored, or accepted earlier in the same batch"."""
    grant(ready, who("max"), "analytics")
    results = send(
        ready,
        [
            event("m1", who("max"), properties={"url": "/", "zzz": 1}),
            event("m1", who("max")),
            event("m1", who("max")),
        ],
    )
    assert codes(results) == ["unknown_field", None, "duplicate_event"]


def test_one_reference_to_two_people_refuses_that_event_only(ready: TestClient) -> None:
    grant(ready, who("nia"), "analytics")
    grant(ready, who("oli"), "analytics")
    both = {
        "identities": [
            {"type": "email", "value": "nia@example.com"},
            {"type": "email", "value": "oli@example.com"},
        ]
    }
    results = send(ready, [event("t1", both), event("t2", who("nia"))], headers={"Sec-GPC": "1"})
    assert codes(results) == ["invalid_event", None]


@pytest.mark.parametrize(
    "change",
    [
        {"occurred_at": "0001-01-01T00:30:00+01:00"},
        {"occurred_at": "9999-12-31T23:59:59-01:00"},
        {"occurred_at": "2026-11-20T10:00:00"},
        {"event_id": "a\u0000b"},
        {"event_type": "page\u0000view"},
        {"subject": {"subject_id": "sub_\u0000"}},
        {"subject": {"identities": [{"type": "email", "value": "a\u0000@example.com"}]}},
        {"event_id": "x" * 129},
        {"occurred_at": "0999-06-01T00:00:00Z"},
    ],
)
def test_edge_values_refuse_the_event_not_the_batch(
    ready: TestClient, change: dict[str, Any]
) -> None:
    grant(ready, who("pia"), "analytics")
    results = send(ready, [event("e1", who("pia")) | change, event("e2", who("pia"))])
    assert codes(results) == ["invalid_event", None]


def test_many_people_by_identity_in_one_batch(ready: TestClient) -> None:
    """Known people are found by one look-up; new ones are created once each."""
    for n in range(5):
        grant(ready, who(f"q{n}"), "analytics")
    batch = [event(f"q{n}-{k}", who(f"q{n % 7}")) for n in range(35) for k in range(2)]
    results = send(ready, batch)
    by_subject = {r["event_id"]: r.get("code") for r in results}
    assert sum(code is None for code in by_subject.values()) == 50
    assert sum(code == "no_consent" for code in by_subject.values()) == 20


def test_codes_before_duplicate_event_keep_their_place(ready: TestClient) -> None:
    """invalid_event and unknown_event_type are tested before duplicate_event."""
    grant(ready, who("ray"), "analytics")
    no_time = {k: v for k, v in event("d1", who("ray")).items() if k != "occurred_at"}
    results = send(
        ready,
        [
            event("d1", who("ray")),
            event("d1", who("ray"), event_type="nope"),
            no_time,
            event("d1", who("ray"), properties={"url": "/", "zzz": 1}),
        ],
    )
    assert codes(results) == [None, "unknown_event_type", "invalid_event", "duplicate_event"]


def test_a_nul_in_a_consent_token_is_an_invalid_token(ready: TestClient) -> None:
    grant(ready, who("sam"), "analytics")
    results = send(ready, [event("n1", who("sam"), consent_token="abc\u0000")])
    assert codes(results) == ["invalid_consent_token"]


def test_a_schema_replaced_since_last_loaded_is_the_one_applied(ready: TestClient) -> None:
    """Properties are decoded, and pure treatments applied, before the batch's transaction
    against the schemas as last loaded; a schema replaced meanwhile is the one that counts."""
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    grant(ready, who("ana"), "analytics")
    text = "write to ana@example.com"
    first = send(ready, [event("s1", who("ana"), properties={"url": "/a", "message": text})])
    assert first[0]["status"] == "accepted"
    fields = dict(SCHEMA["fields"])
    fields["message"] = fields["message"] | {"treatment": "pseudonymise"}
    fields["note"] = {"type": "string", "category": "system.operations", "treatment": "keep"}
    resp = ready.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA | {"fields": fields})
    assert resp.status_code == 200, resp.text
    # The copy the next batch is prepared against is still the first version.
    assert "note" not in rt.schemas.last()["page_view"].fields
    # s2 fits the first version too (decoded against it beforehand, its message redacted
    # there); s3 only fits the second.
    both = [
        event("s2", who("ana"), properties={"url": "/b", "message": text}),
        event("s3", who("ana"), properties={"url": "/c", "message": text, "note": "kept"}),
    ]
    assert [r["status"] for r in send(ready, both)] == ["accepted", "accepted"]
    with rt.store.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT event_id, properties FROM events WHERE event_id IN ('s2', 's3')"
        ).all()
    stored = {event_id: json.loads(properties) for event_id, properties in rows}
    assert stored["s3"]["note"] == "kept"
    assert stored["s2"]["message"] == stored["s3"]["message"]
    assert len(stored["s2"]["message"]) == 64
    assert "example.com" not in str(rows)
