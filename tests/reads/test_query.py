"""Purpose-scoped reads (both back-ends): counts and event pages (exports: test_exports.py) see
only what the
consent that holds at the moment of the read allows, and report their policy version. The
minimum group size is turned off here (1): these tests count three subjects (see
test_groups.py for the rule)."""

from __future__ import annotations

import dataclasses
import json
import statistics
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.dsr.erasure import SETTLE
from consentry.settings import Settings
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import event, grant, send, who


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, min_group_subjects=1)


def withdraw(client: TestClient, name: str, *purposes: str) -> None:
    resp = client.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who(name), "purposes": list(purposes)},
    )
    assert resp.status_code == 200, resp.text


def query(client: TestClient, key: str | None = None, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/query", headers=auth(key) if key else auth(), json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def count(client: TestClient, **body: Any) -> int:
    rows = query(client, purpose="analytics", **body)["rows"]
    return int(rows[0]["value"])


@pytest.fixture
def stored(ready: TestClient) -> TestClient:
    """ana (2 events), bo (3 events) and cy (1 event) for analytics and personalization."""
    for name, n in (("ana", 2), ("bo", 3), ("cy", 1)):
        grant(ready, who(name), "analytics", "personalization")
        events = [
            event(
                f"{name}-{i}",
                who(name),
                properties={
                    "url": f"/p/{i % 2}",
                    "offer": "spring",
                    "email": f"{name}@example.com",
                },
            )
            for i in range(n)
        ]
        assert all(r["status"] == "accepted" for r in send(ready, events))
    return ready


def test_counts_follow_withdrawal_at_once(stored: TestClient) -> None:
    before = query(stored, purpose="analytics")
    assert before["rows"] == [{"value": 6}]
    assert count(stored, metric="count_subjects") == 3
    withdraw(stored, "bo", "analytics")
    after = query(stored, purpose="analytics")
    assert after["rows"] == [{"value": 3}]
    assert after["policy_version"] > before["policy_version"]
    assert count(stored, metric="count_subjects") == 2
    # The other purpose still sees bo.
    assert query(stored, purpose="personalization")["rows"] == [{"value": 6}]


def test_counts_follow_expiry(stored: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert count(stored) == 6
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=400))
    assert count(stored) == 0


def test_filters_and_group_by(stored: TestClient) -> None:
    assert count(stored, event_type="page_view") == 6
    assert count(stored, **{"from": "2026-11-20T10:00:01Z"}) == 0
    assert count(stored, **{"to": "2026-11-20T10:00:01Z"}) == 6
    rows = query(stored, purpose="analytics", event_type="page_view", group_by=["url"])["rows"]
    assert rows == [{"url": "/p/0", "value": 4}, {"url": "/p/1", "value": 2}]


def test_group_by_refuses_what_the_purpose_may_not_see(stored: TestClient) -> None:
    body = {"purpose": "analytics", "event_type": "page_view"}
    # offer is kept only for personalization.
    resp = stored.post("/v1/query", headers=auth(), json=body | {"group_by": ["offer"]})
    assert_problem(resp, 422, "field_not_readable")
    resp = stored.post("/v1/query", headers=auth(), json=body | {"group_by": ["nope"]})
    assert_problem(resp, 422, "invalid_query")
    resp = stored.post(
        "/v1/query", headers=auth(), json={"purpose": "analytics", "group_by": ["url"]}
    )
    assert_problem(resp, 422, "invalid_query")
    rows = query(stored, purpose="personalization", event_type="page_view", group_by=["offer"])[
        "rows"
    ]
    assert rows == [{"offer": "spring", "value": 6}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"purpose": "nope"}, 422, "unknown_purpose"),
        ({"purpose": "analytics", "event_type": "nope"}, 422, "invalid_query"),
        (
            {"purpose": "analytics", "from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
            422,
            "invalid_query",
        ),
        ({"purpose": "analytics", "from": "2026-11-21T00:00:00"}, 422, "invalid_request"),
        ({"purpose": "analytics", "metric": "sum"}, 422, "invalid_request"),
        ({"purpose": "analytics", "dp_epsilon": 0}, 422, "invalid_dp_parameters"),
        ({"purpose": "analytics", "dp_epsilon": 11}, 422, "invalid_dp_parameters"),
        ({"purpose": "analytics", "dp_epsilon": 1e-300}, 422, "invalid_dp_parameters"),
        ({"purpose": "analytics", "dp_epsilon": "1"}, 422, "invalid_request"),
        ({"purpose": "analytics", "dp_epsilon": 1, "dp_bound": 0}, 422, "invalid_dp_parameters"),
        (
            {
                "purpose": "analytics",
                "event_type": "page_view",
                "group_by": ["url"],
                "dp_epsilon": 1,
            },
            422,
            "invalid_dp_parameters",
        ),
        ({"purpose": "analytics", "colour": "red"}, 422, "unknown_field"),
    ],
)
def test_bad_queries_are_refused_with_a_code(
    stored: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    assert_problem(stored.post("/v1/query", headers=auth(), json=body), status, code)


def test_event_pages_show_what_the_purpose_may_see(stored: TestClient) -> None:
    resp = stored.get("/v1/events", headers=auth(), params={"purpose": "analytics", "limit": 4})
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert len(first["items"]) == 4
    assert first["next"]
    item = first["items"][0]
    assert set(item) == {
        "event_id",
        "event_type",
        "occurred_at",
        "subject_pseudonym",
        "purpose",
        "properties",
    }
    # The pseudonymised e-mail stays a pseudonym; offer belongs to personalization only.
    assert "offer" not in item["properties"]
    assert "@" not in json.dumps(first)
    second = stored.get(
        "/v1/events",
        headers=auth(),
        params={"purpose": "analytics", "limit": 4, "cursor": first["next"]},
    ).json()
    assert len(second["items"]) == 2
    assert second["next"] is None
    ids = [i["event_id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 6
    personal = stored.get(
        "/v1/events", headers=auth(), params={"purpose": "personalization"}
    ).json()
    assert all(i["properties"]["offer"] == "spring" for i in personal["items"])
    # One subject, two purposes: two pseudonyms that cannot be joined.
    assert not {i["subject_pseudonym"] for i in first["items"]} & {
        i["subject_pseudonym"] for i in personal["items"]
    }
    withdraw(stored, "ana", "analytics")
    after = stored.get("/v1/events", headers=auth(), params={"purpose": "analytics"}).json()
    assert not any(i["event_id"].startswith("ana-") for i in after["items"])
    assert after["policy_version"] > first["policy_version"]


def test_event_pages_refuse_bad_input(stored: TestClient) -> None:
    for params, status, code in [
        ({}, 422, "invalid_request"),
        ({"purpose": "analytics", "limit": 0}, 422, "invalid_request"),
        ({"purpose": "analytics", "cursor": "garbage"}, 400, "invalid_cursor"),
        ({"purpose": "nope"}, 422, "unknown_purpose"),
    ]:
        assert_problem(stored.get("/v1/events", headers=auth(), params=params), status, code)


def test_reads_are_audited_and_need_data_read(stored: TestClient) -> None:
    collector = make_key(stored, "collector")
    resp = stored.post("/v1/query", headers=auth(collector), json={"purpose": "analytics"})
    assert_problem(resp, 403, "forbidden")
    analyst = make_key(stored, "analyst")
    query(stored, analyst, purpose="analytics")
    stored.get("/v1/events", headers=auth(analyst), params={"purpose": "analytics"})
    entries = stored.get("/v1/audit/entries", headers=auth(), params={"limit": 500}).json()
    actions = [e["action"] for e in entries["items"]]
    assert "data:query" in actions
    assert "data:read" in actions


def test_dp_counts_are_noisy_unbiased_and_budgeted(stored: TestClient) -> None:
    analyst = make_key(stored, "analyst")
    values = [
        query(stored, analyst, purpose="analytics", dp_epsilon=0.1)["rows"][0]["value"]
        for _ in range(100)
    ]
    # 6 events, at most 10 per subject counted: sensitivity 10, scale 100.
    assert len(set(values)) > 10
    assert abs(statistics.mean(values) - 6) < 4 * 100 * 2**0.5 / 10
    resp = stored.post(
        "/v1/query", headers=auth(analyst), json={"purpose": "analytics", "dp_epsilon": 0.5}
    )
    assert_problem(resp, 429, "privacy_budget_exhausted")
    # Another key has its own budget.
    other = make_key(stored, "analyst")
    assert query(stored, other, purpose="analytics", dp_epsilon=1)["dp_epsilon"] == 1


def test_query_over_what_was_never_stored_for_the_purpose(stored: TestClient) -> None:
    assert query(stored, purpose="marketing")["rows"] == [{"value": 0}]


def dsr(client: TestClient, name: str, kind: str, level: str, **extra: Any) -> None:
    resp = client.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": kind,
            "subject": who(name),
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": level},
        }
        | extra,
    )
    assert resp.status_code == 202, resp.text


def test_counts_and_reads_follow_restriction(stored: TestClient) -> None:
    made = stored.post("/v1/exports", headers=auth(), json={"purpose": "analytics"}).json()
    dsr(stored, "bo", "restriction", "reasonable", ground="18_1_a")
    assert count(stored) == 3
    assert query(stored, purpose="personalization")["rows"] == [{"value": 3}]
    page = stored.get("/v1/events", headers=auth(), params={"purpose": "analytics"}).json()
    assert not any(i["event_id"].startswith("bo-") for i in page["items"])
    download = stored.get(f"/v1/exports/{made['export_id']}/download", headers=auth()).text
    assert "bo-" not in download


def test_counts_and_reads_follow_erasure(stored: TestClient) -> None:
    dsr(stored, "cy", "erasure", "high")
    # At once, before the runner has deleted anything.
    assert count(stored) == 5
    assert count(stored, metric="count_subjects") == 2
    page = stored.get("/v1/events", headers=auth(), params={"purpose": "analytics"}).json()
    assert not any(i["event_id"].startswith("cy-") for i in page["items"])


def test_purged_purpose_stays_gone_after_a_new_grant(
    stored: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events narrowed by the withdrawal purge are not read for that purpose again, even
    once the subject grants it anew."""
    withdraw(stored, "bo", "personalization")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + SETTLE)
    stored.app.state.runtime.runner.run_pending()  # type: ignore[attr-defined]
    grant(stored, who("bo"), "personalization")
    assert query(stored, purpose="personalization")["rows"] == [{"value": 3}]
    assert count(stored) == 6
