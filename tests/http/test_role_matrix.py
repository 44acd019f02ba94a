"""Every route the app serves, by every role, generated from the permission table
(auth/models.py ROLE_PERMISSIONS joined with http/routes.py ROUTES), on SQLite and PostgreSQL:
a role without the route's permission gets 403 `forbidden` naming the permission, whatever the
request's body, query or ids; a role with it never gets 401 or 403. A route the app serves that
the table does not name fails, so a new route is covered by itself.

Authorisation comes before validation: a denied role is refused 403 with a body that does not
fit the route's model, a required query parameter left out and ids that name nothing, so a
refusal says nothing of what exists. Only a body that is not JSON at all is refused (400)
before the key is looked at, by every route class alike (http/rawroute.py keeps FastAPI's
order)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as StarletteRoute

from consentry.app import create_app
from consentry.auth.models import Permission, Role, allows
from consentry.http.auth import AUTHENTICATED, KEY_HEADER
from consentry.http.rawroute import RawRoute
from consentry.http.routes import PUBLIC, ROUTES, Route
from consentry.settings import Settings
from consentry.web import console, portal, staff
from tests.conftest import ADMIN_KEY, BACKENDS, MASTER_KEY, auth, fresh_pg_database

ORIGIN = "https://shop.example.com"
COOKIE = "ck-matrix-0001"
# Served, but not by an API key's right: the pages (a person's session and role decide, in
# their handlers: tests/web/test_staff.py) and what anyone may fetch.
PAGES = frozenset(staff.PAGES) | frozenset(portal.PAGES) | frozenset(console.PAGES)
OPEN = {
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/docs"): "Swagger UI",
    ("GET", "/redoc"): "ReDoc",
    ("GET", "/sdk/consentry.js"): "the browser SDK, for any site",
    ("GET", "/sdk/consentry.mjs"): "the browser SDK as an ES module",
    ("GET", "/static"): "the pages' stylesheet and scripts",
    ("GET", "/docs/assets"): "Swagger UI's and ReDoc's files",
}
TABLE = {(route.method, route.path): route for route in ROUTES}


def _methods(route: BaseRoute) -> list[tuple[str, str]]:
    if isinstance(route, Mount):
        return [("GET", route.path)]
    if isinstance(route, APIRoute | StarletteRoute):
        return [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    raise TypeError(f"a route of an unknown kind: {route!r}")


def _takes_body(route: BaseRoute) -> bool:
    if isinstance(route, RawRoute):
        return route.body is not None
    return isinstance(route, APIRoute) and route.body_field is not None


def served() -> list[tuple[str, str, bool, bool]]:
    """(method, path, is an API route, takes a body) of everything the app serves, from the
    app itself."""
    app = create_app(Settings(data_dir=Path("unused"), admin_key=ADMIN_KEY, master_key=MASTER_KEY))
    return [
        (
            method,
            path,
            isinstance(route, APIRoute) and route.include_in_schema,
            _takes_body(route),
        )
        for route in app.routes
        for method, path in _methods(route)
    ]


SERVED = served()
API = [(method, path) for method, path, api, _ in SERVED if api]
BODIES = {(method, path) for method, path, api, body in SERVED if api and body}


def test_every_route_the_app_serves_is_in_a_table() -> None:
    missing = [
        f"{method} {path}"
        for method, path, api, _ in SERVED
        if (method, path) not in (TABLE if api else PAGES | OPEN.keys())
    ]
    assert missing == [], "served, but in no table (http/routes.py ROUTES, or a page's)"
    # And the other way: nothing in the table that the app does not serve.
    assert set(TABLE) == set(API)


def allowed(route: Route, role: Role) -> bool:
    """The permission table's answer: may `role` call `route`?"""
    if route.permission is PUBLIC:
        return True
    if role is Role.BROWSER and route.browser is None:
        return False
    if route.permission == AUTHENTICATED:
        return True
    return isinstance(route.permission, Permission) and allows(role, route.permission)


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[Role, dict[str, str]], str]]:
    """A gateway on the back-end, each role's request headers, and a subject the browser
    key's visitor is (its id fills every {subject_id})."""
    db = ""
    if request.param == "postgresql":
        db = fresh_pg_database(request.getfixturevalue("pg_url"))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("matrix") / "data",
        db=db,
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
        browser_rate_limit=0,
    )
    with TestClient(create_app(settings)) as client:
        headers: dict[Role, dict[str, str]] = {Role.ADMIN: auth()}
        for role in Role:
            if role is Role.ADMIN:
                continue
            body: dict[str, Any] = {"role": role, "label": "matrix"}
            if role is Role.BROWSER:
                body["origins"] = [ORIGIN]
            made = client.post("/v1/api-keys", headers=auth(), json=body)
            assert made.status_code == 201, made.text
            key = made.json()["key"]
            headers[role] = (
                {KEY_HEADER: key, "Origin": ORIGIN, "X-Consentry-Subject": f"cookie_id={COOKIE}"}
                if role is Role.BROWSER
                else auth(key)
            )
        subject = {"identities": [{"type": "cookie_id", "value": COOKIE}]}
        found = client.post("/v1/subjects", headers=auth(), json={"subject": subject})
        assert found.status_code in {200, 201}, found.text
        yield client, headers, found.json()["subject_id"]


def call(
    client: TestClient,
    route: Route,
    headers: dict[str, str],
    subject_id: str,
    content: bytes | None = None,
) -> Any:
    """`route` called with `headers`: its {subject_id} the browser visitor's, other ids naming
    nothing, and `content`, or else (but for a GET) `{}`, an object no route's model fits."""
    path = route.path.replace("{subject_id}", subject_id)
    path = re.sub(r"\{[a-z_]+\}", "zz_unknown", path)
    if content is None and route.method != "GET":
        return client.request(route.method, path, headers=headers, json={})
    return client.request(route.method, path, headers=headers, content=content)


@pytest.mark.parametrize(("method", "path"), API, ids=[f"{m} {p}" for m, p in API])
def test_each_role_gets_what_the_table_gives_it(
    world: tuple[TestClient, dict[Role, dict[str, str]], str], method: str, path: str
) -> None:
    client, headers, subject_id = world
    route = TABLE.get((method, path))
    assert route is not None, f"{method} {path} is served but not in http/routes.py ROUTES"

    anonymous = call(client, route, {}, subject_id)
    if route.permission is PUBLIC:
        assert anonymous.status_code == 200, anonymous.text
    else:
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["code"] == "unauthenticated"

    for role in Role:
        resp = call(client, route, headers[role], subject_id)
        assert resp.status_code < 500, (role, resp.text)
        if allowed(route, role):
            assert resp.status_code not in {401, 403}, (role, resp.text)
            if role is Role.ADMIN:
                # Not the router's own answers: the request reached the route's handler.
                assert resp.status_code != 405, resp.text
                if resp.status_code == 404:
                    assert resp.json()["detail"] != "no such resource"
            continue
        assert resp.status_code == 403, (role, resp.text)
        problem = resp.json()
        assert problem["code"] == "forbidden", (role, problem)
        assert problem["role"] == role.value
        assert problem["permission"] == str(route.permission)


@pytest.mark.parametrize(("method", "path"), API, ids=[f"{m} {p}" for m, p in API])
def test_only_a_body_that_is_not_json_is_refused_before_the_key(
    world: tuple[TestClient, dict[Role, dict[str, str]], str], method: str, path: str
) -> None:
    client, headers, subject_id = world
    route = TABLE[(method, path)]
    denied = next((role for role in Role if not allowed(route, role)), None)
    if method == "GET" or denied is None:
        return
    as_json = {"Content-Type": "application/json"}
    refused = call(client, route, headers[denied] | as_json, subject_id, content=b"{not json")
    anonymous = call(client, route, as_json, subject_id, content=b"{not json")
    if (method, path) in BODIES:
        for resp in (refused, anonymous):
            assert (resp.status_code, resp.json()["code"]) == (400, "malformed_json"), resp.text
    else:
        # A route that reads no body never looks at it.
        assert refused.status_code == 403, refused.text
        assert anonymous.status_code == 401, anonymous.text
