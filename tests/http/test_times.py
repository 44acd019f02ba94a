"""Every time a request carries (a body's or a query string's) is one type: a time at the
calendar's edge whose UTC form does not exist, or a year before 1000, is 422
`invalid_request` on every route that takes one (both back-ends), never an overflow."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.dsr.conftest import CONSENT_PURPOSES, SCHEMA, email, grant, request
from tests.http.test_conventions import assert_problem

EDGES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0999-12-31T23:59:59Z",
    "2026-01-01T00:00:00",
]


@pytest.fixture
def ready(client: TestClient) -> TestClient:
    notice = {"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES}
    assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
    assert client.put("/v1/schemas/chat", headers=auth(), json=SCHEMA).status_code == 201
    return client


def _reads(client: TestClient, field: str, moment: str) -> list[Any]:
    return [
        client.get("/v1/events", headers=auth(), params={"purpose": "analytics", field: moment}),
        client.post("/v1/query", headers=auth(), json={"purpose": "analytics", field: moment}),
        client.post("/v1/exports", headers=auth(), json={"purpose": "analytics", field: moment}),
    ]


@pytest.mark.parametrize("moment", EDGES)
def test_a_time_out_of_range_is_invalid_on_every_route(ready: TestClient, moment: str) -> None:
    for field in ("from", "to"):
        for resp in _reads(ready, field, moment):
            body = assert_problem(resp, 422, "invalid_request")
            assert field in str(body["errors"])
    grant(ready, email("edge"), "analytics")
    rid = request(ready, {"type": "access", "subject": email("edge"), "jurisdiction": "EU"})[
        "request_id"
    ]
    resp = ready.post(
        f"/v1/requests/{rid}/extend",
        headers=auth(),
        json={"months": 1, "reason": "many systems", "subject_notified_at": moment},
    )
    assert_problem(resp, 422, "invalid_request")
    assert ready.get(f"/v1/requests/{rid}", headers=auth()).json()["extended"] is False
    resp = ready.request(
        "DELETE",
        f"/v1/subjects/{rid}/restriction",
        headers=auth(),
        json={"reason": "resolved", "subject_informed_at": moment},
    )
    assert_problem(resp, 422, "invalid_request")


def test_times_inside_the_range_are_read(ready: TestClient) -> None:
    for moment in ("1000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-20T10:00:00+14:00"):
        for resp in _reads(ready, "from", moment):
            assert resp.status_code in (200, 201), resp.text
