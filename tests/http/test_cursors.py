"""Every list refuses a forged cursor as 400 `invalid_cursor` (both back-ends): a position
with NUL, a lone surrogate or a value of a shape this server never writes, under the keys
each list reads. The lists are found from the app, so a new one is covered by itself."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.http.test_bodies import concrete
from tests.http.test_conventions import assert_problem

# The positions this server writes, each with a plausible value for every key.
POSITIONS: list[dict[str, Any]] = [
    {"after": 1},
    {"after": "r1"},
    {"from_index": 1},
    {"created_at": "2026-01-01T00:00:00+00:00", "key_id": "k1"},
]
BAD_VALUES: list[Any] = [
    "\ud800",
    "a\udfffb",
    "a\x00b",
    -1,
    2**63,
    True,
    1.5,
    None,
    [],
    ["k1"],
    {"after": 1},
]


def list_routes(app: FastAPI) -> list[APIRoute]:
    """Every route that takes a `cursor` query parameter."""
    return [
        r
        for r in app.routes
        if isinstance(r, APIRoute) and any(p.alias == "cursor" for p in r.dependant.query_params)
    ]


def forge(position: dict[str, Any]) -> str:
    # ensure_ascii: a lone surrogate travels as \\ud800 inside the JSON, as a forger would send.
    raw = json.dumps(position).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forged() -> list[dict[str, Any]]:
    return [
        position | {key: bad} for position in POSITIONS for key in position for bad in BAD_VALUES
    ]


def test_every_list_refuses_forged_cursors(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = list_routes(app)
    paths = {r.path for r in routes}
    assert {"/v1/api-keys", "/v1/requests", "/v1/audit/entries", "/v1/events"} <= paths
    for route in routes:
        for position in forged():
            resp = client.get(
                concrete(route.path),
                headers=auth(),
                params={"cursor": forge(position), "purpose": "analytics"},
            )
            assert_problem(resp, 400, "invalid_cursor")


@pytest.mark.parametrize("key_id", ["\ud800", "k\x001"])
def test_a_forged_api_keys_cursor_is_not_a_500(client: TestClient, key_id: str) -> None:
    position = {"created_at": "2026-01-01T00:00:00+00:00", "key_id": key_id}
    resp = client.get("/v1/api-keys", headers=auth(), params={"cursor": forge(position)})
    assert_problem(resp, 400, "invalid_cursor")


def test_cursors_this_server_made_still_page(client: TestClient) -> None:
    for n in range(3):
        made = client.post("/v1/api-keys", headers=auth(), json={"role": "dpo", "label": f"k{n}"})
        assert made.status_code == 201
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        resp = client.get("/v1/api-keys", headers=auth(), params=params)
        assert resp.status_code == 200, resp.text
        seen += [k["key_id"] for k in resp.json()["items"]]
        if resp.json()["next"] is None:
            break
        params["cursor"] = resp.json()["next"]
    assert len(seen) == len(set(seen)) >= 3
