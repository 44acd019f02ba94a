"""`group_by` and the minimum group size (API.md, Reads), both back-ends: groups over sealed
fields tallied from values opened for the read; a group (or an ungrouped answer) drawn from
fewer than CONSENTRY_MIN_GROUP_SUBJECTS distinct subjects left out, and counted in
`suppressed`, whose total is given only when it is itself drawn from that many subjects."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import auth
from tests.http.test_conventions import assert_problem, make_key
from tests.ingest.test_pipeline import event, grant, send, who
from tests.reads.conftest import CARE_NOTICE, view
from tests.reads.test_query import withdraw


def query(client: TestClient, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/query", headers=auth(), json={"purpose": "analytics"} | body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def grouped(client: TestClient, field: str, **body: Any) -> dict[str, Any]:
    return query(client, event_type="page_view", group_by=[field], **body)


@pytest.fixture
def crowd(shop: TestClient) -> TestClient:
    """Page views (url mirrors page): `/a` by s0..s5 (two each); `/b` by s6, s7 (one each) and
    s0 (two); `/c` by s8, s9 and s0 (one each). /b and /c are each drawn from three subjects,
    together from five."""
    plan = [(f"s{n}", "/a", 2) for n in range(6)]
    plan += [("s6", "/b", 1), ("s7", "/b", 1), ("s0", "/b", 2)]
    plan += [("s8", "/c", 1), ("s9", "/c", 1), ("s0", "/c", 1)]
    for name, page, n in plan:
        view(shop, name, n, page=page, url="/u" + page)
    return shop


@pytest.mark.parametrize("field", ["page", "url"])
def test_small_groups_are_left_out_and_their_total_given_when_drawn_from_enough(
    crowd: TestClient, field: str
) -> None:
    """`page` is sealed (tallied from opened values), `url` is stored in clear (counted in
    SQL): the same rule either way."""
    answer = grouped(crowd, field)
    assert answer["rows"] == [{field: "/a" if field == "page" else "/u/a", "value": 12}]
    # 4 + 3 events of /b and /c, drawn from s0, s6, s7, s8, s9 together.
    assert answer["suppressed"] == {"groups": 2, "value": 7}
    subjects = grouped(crowd, field, metric="count_subjects")
    assert subjects["rows"] == [{field: "/a" if field == "page" else "/u/a", "value": 6}]
    # Distinct subjects of /b and /c together: s0 is counted once (not 3 + 3).
    assert subjects["suppressed"] == {"groups": 2, "value": 5}
    # Without s9 the two small groups are drawn from four subjects: shown beside /a, their
    # total would be the ungrouped count less /a's. /a is left out with them (secondary
    # suppression), and the total of all three given.
    withdraw(crowd, "s9", "analytics")
    answer = grouped(crowd, field)
    assert answer["rows"] == []
    assert answer["suppressed"] == {"groups": 3, "value": 18}
    # An answer with nothing left out carries no `suppressed`.
    assert "suppressed" not in query(crowd)


def test_group_by_several_fields_sealed_and_clear(crowd: TestClient) -> None:
    answer = query(crowd, event_type="page_view", group_by=["url", "page"])
    assert answer["rows"] == [{"url": "/u/a", "page": "/a", "value": 12}]
    assert answer["suppressed"] == {"groups": 2, "value": 7}


def test_an_answer_drawn_from_few_subjects_is_left_out(shop: TestClient) -> None:
    """Ungrouped, plain or noisy: rows stay empty while fewer than five subjects are counted,
    and a noisy answer left out spends no privacy budget."""
    for n in range(4):
        view(shop, f"p{n}", 3)
    for body in ({}, {"metric": "count_subjects"}, {"group_by": []}):
        answer = query(shop, **body)
        assert answer["rows"] == []
        assert answer["suppressed"] == {"groups": 1}
    analyst = make_key(shop, "analyst")
    for _ in range(3):
        resp = shop.post(
            "/v1/query", headers=auth(analyst), json={"purpose": "analytics", "dp_epsilon": 10}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["rows"] == []
        assert resp.json()["suppressed"] == {"groups": 1}
    view(shop, "p4", 1)
    assert query(shop)["rows"] == [{"value": 13}]
    # The whole budget is still there.
    resp = shop.post(
        "/v1/query", headers=auth(analyst), json={"purpose": "analytics", "dp_epsilon": 10}
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["rows"]) == 1
    assert "suppressed" not in resp.json()


def test_one_turns_the_rule_off(crowd: TestClient, settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, min_group_subjects=1))
    with TestClient(app) as other:
        answer = grouped(other, "page")
    assert answer["rows"] == [
        {"page": "/a", "value": 12},
        {"page": "/b", "value": 4},
        {"page": "/c", "value": 3},
    ]
    assert "suppressed" not in answer


def test_group_by_a_special_category_field(shop: TestClient) -> None:
    """Only a qualifying purpose may group by health data; a subject whose data it may not
    see counts as absent (None)."""
    for n in range(5):
        grant(shop, who(f"r{n}"), "analytics", "research", notice=CARE_NOTICE)
    grant(shop, who("r5"), "analytics", "research", notice=CARE_NOTICE)
    visits = [
        event(f"v{n}", who(f"r{n}"), event_type="visit", properties={"condition": "asthma"})
        for n in range(5)
    ]
    visits.append(event("v5", who("r5"), event_type="visit", properties={"condition": "gout"}))
    assert all(r["status"] == "accepted" for r in send(shop, visits))
    body = {"event_type": "visit", "group_by": ["condition"]}
    answer = query(shop, purpose="research", **body)
    # Gout alone would be the ungrouped 6 less asthma's 5: asthma is left out with it.
    assert answer["rows"] == []
    assert answer["suppressed"] == {"groups": 2, "value": 6}
    more = [
        event(f"v{n}", who(f"r{n - 6}"), event_type="visit", properties={"condition": "gout"})
        for n in range(6, 10)
    ]
    assert all(r["status"] == "accepted" for r in send(shop, more))
    answer = query(shop, purpose="research", **body)
    assert answer["rows"] == [
        {"condition": "asthma", "value": 5},
        {"condition": "gout", "value": 5},
    ]
    assert "suppressed" not in answer
    resp = shop.post("/v1/query", headers=auth(), json={"purpose": "analytics"} | body)
    assert_problem(resp, 422, "field_not_readable")
    # Explicit consent needed from now on: none of these grants was explicit.
    resp = shop.put(
        "/v1/purposes/research",
        headers=auth(),
        json={
            "name": "Research",
            "legal_basis": "consent",
            "retention_days": 30,
            "special_category_condition": "a",
        },
    )
    assert resp.status_code == 200, resp.text
    answer = query(shop, purpose="research", **body)
    assert answer["rows"] == [{"condition": None, "value": 10}]


def test_group_by_needs_an_event_type_and_a_field_the_purpose_may_see(
    crowd: TestClient,
) -> None:
    resp = crowd.post(
        "/v1/query", headers=auth(), json={"purpose": "analytics", "group_by": ["page"]}
    )
    assert_problem(resp, 422, "invalid_query")
    body = {"purpose": "analytics", "event_type": "page_view", "group_by": ["offer"]}
    assert_problem(crowd.post("/v1/query", headers=auth(), json=body), 422, "field_not_readable")
    answer = query(crowd, purpose="personalization", event_type="page_view", group_by=["page"])
    assert answer["rows"] == [{"page": "/a", "value": 12}]


def test_the_response_model_names_suppressed(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/v1/query"]["post"]["responses"]["200"]["content"]
    ref = schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = spec["components"]["schemas"][ref]["properties"]
    assert {"rows", "policy_version", "dp_epsilon", "suppressed"} <= set(properties)
    suppressed = spec["components"]["schemas"]["Suppressed"]["properties"]
    assert set(suppressed) == {"groups", "value"}


def test_a_boolean_group_is_not_the_number_one(shop: TestClient) -> None:
    """A field that was boolean and became an integer (a new schema version): true and 1 are
    two groups, not one."""
    schema: dict[str, Any] = {
        "purposes": ["analytics"],
        "fields": {"vip": {"type": "boolean", "category": "user.behavior", "treatment": "keep"}},
    }
    assert shop.put("/v1/schemas/survey", headers=auth(), json=schema).status_code == 201
    for n in range(10):
        grant(shop, who(f"q{n}"), "analytics")
    first = [
        event(f"b{n}", who(f"q{n}"), event_type="survey", properties={"vip": True})
        for n in range(5)
    ]
    assert all(r["status"] == "accepted" for r in send(shop, first))
    schema["fields"]["vip"]["type"] = "integer"
    assert shop.put("/v1/schemas/survey", headers=auth(), json=schema).status_code == 200
    then = [
        event(f"i{n}", who(f"q{n}"), event_type="survey", properties={"vip": 1})
        for n in range(5, 10)
    ]
    assert all(r["status"] == "accepted" for r in send(shop, then))
    answer = query(shop, event_type="survey", group_by=["vip"])
    assert answer["rows"] == [{"vip": True, "value": 5}, {"vip": 1, "value": 5}]
    assert "suppressed" not in answer


@pytest.mark.parametrize(
    "category", ["system.operations", "user.behavior"], ids=["clear", "sealed"]
)
def test_group_values_are_the_same_on_both_back_ends(shop: TestClient, category: str) -> None:
    """A field stored in clear (counted in SQL) or sealed (tallied from opened values), boolean
    and later integer: absent, false, true, 0 and 1 are five groups with their JSON values, in
    one order (absent first, then by type, then by value), whatever the back-end."""
    schema: dict[str, Any] = {
        "purposes": ["analytics"],
        "fields": {"vip": {"type": "boolean", "category": category, "treatment": "keep"}},
    }
    assert shop.put("/v1/schemas/member", headers=auth(), json=schema).status_code == 201
    plan: list[tuple[int, dict[str, Any]]] = [(n, {"vip": n % 2 == 1}) for n in range(10)]
    plan += [(n, {}) for n in range(10, 15)]
    for n, _ in plan:
        grant(shop, who(f"m{n}"), "analytics")
    first = [event(f"m{n}", who(f"m{n}"), event_type="member", properties=p) for n, p in plan]
    assert all(r["status"] == "accepted" for r in send(shop, first))
    schema["fields"]["vip"]["type"] = "integer"
    assert shop.put("/v1/schemas/member", headers=auth(), json=schema).status_code == 200
    for n in range(15, 25):
        grant(shop, who(f"m{n}"), "analytics")
    then = [
        event(f"m{n}", who(f"m{n}"), event_type="member", properties={"vip": n % 2})
        for n in range(15, 25)
    ]
    assert all(r["status"] == "accepted" for r in send(shop, then))
    answer = query(shop, event_type="member", group_by=["vip"])
    # With their types: False == 0 in Python.
    assert [(repr(r["vip"]), r["value"]) for r in answer["rows"]] == [
        ("None", 5),
        ("False", 5),
        ("True", 5),
        ("0", 5),
        ("1", 5),
    ]
    assert "suppressed" not in answer


@pytest.mark.parametrize("field", ["page", "url"])
def test_too_many_groups_are_refused(crowd: TestClient, field: str) -> None:
    """Past the groups one answer may hold (here 3; 10,000 by default): 422 too_many_groups,
    for a sealed field and one in clear alike, and for either metric."""
    rt: Runtime = crowd.app.state.runtime  # type: ignore[attr-defined]
    rt.reads.max_groups = 3
    assert len(grouped(crowd, field)["rows"]) == 1
    view(crowd, "s0", 1, page="/d", url="/u/d")
    body = {"purpose": "analytics", "event_type": "page_view", "group_by": [field]}
    for metric in ("count", "count_subjects"):
        resp = crowd.post("/v1/query", headers=auth(), json=body | {"metric": metric})
        assert_problem(resp, 422, "too_many_groups")
    rt.reads.max_groups = 4
    assert grouped(crowd, field)["suppressed"]["groups"] == 3
