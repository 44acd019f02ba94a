"""http/routes.py: the app serves exactly the routes of the URL table, each behind its
permission (public, any key, or one permission), on SQLite (the table does no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.auth.models import ROLE_PERMISSIONS, Permission, Role
from consentry.http.auth import AUTHENTICATED
from consentry.http.routes import PUBLIC, ROUTES, Route
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth

# Served by http/openapi.py, outside the table.
DOCS_ROUTES = {("GET", "/docs"), ("GET", "/redoc")}


def name(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("routes") / "data",
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(client: TestClient) -> dict[Role, str]:
    """A key of each role (the admin's from the settings)."""
    made = {Role.ADMIN: ADMIN_KEY}
    for role in Role:
        if role is not Role.ADMIN:
            body = {"role": role, "label": "t"}
            if role is Role.BROWSER:
                body["origins"] = ["https://shop.example.com"]
            resp = client.post("/v1/api-keys", headers=auth(), json=body)
            assert resp.status_code == 201, resp.text
            made[role] = resp.json()["key"]
    return made


def call(client: TestClient, route: Route, headers: dict[str, str]) -> object:
    path = re.sub(r"\{[a-z_]+\}", "zz_unknown", route.path)
    body = {"json": {}} if route.method != "GET" else {}
    return client.request(route.method, path, headers=headers, **body)  # type: ignore[arg-type]


def test_the_table_is_what_the_app_serves() -> None:
    app = create_app(Settings(data_dir=Path("unused"), admin_key=ADMIN_KEY, master_key=MASTER_KEY))
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    table = [(route.method, route.path) for route in ROUTES]
    assert len(table) == len(set(table)), "a route is listed twice"
    assert served == set(table) | DOCS_ROUTES


@pytest.mark.parametrize("route", ROUTES, ids=name)
def test_every_route_is_served_behind_its_permission(
    client: TestClient, keys: dict[Role, str], route: Route
) -> None:
    resp = call(client, route, auth())
    # Not the router's own answers: the request reached the route (its handler may still
    # find nothing under an unknown id, or refuse the empty body).
    assert resp.status_code != 405, resp.text  # type: ignore[attr-defined]
    if resp.status_code == 404:  # type: ignore[attr-defined]
        assert resp.json()["detail"] != "no such resource"  # type: ignore[attr-defined]
    assert resp.status_code < 500, resp.text  # type: ignore[attr-defined]

    anonymous = call(client, route, {})
    if route.permission is PUBLIC:
        assert anonymous.status_code == 200, anonymous.text  # type: ignore[attr-defined]
        return
    assert anonymous.status_code == 401, anonymous.text  # type: ignore[attr-defined]
    for role, key in keys.items():
        resp = call(client, route, auth(key))
        if role is Role.BROWSER:
            # A publishable key is never a bearer key (tests/http/test_browser_routes.py).
            assert resp.status_code == 401, resp.text  # type: ignore[attr-defined]
            continue
        allowed = route.permission == AUTHENTICATED or (
            isinstance(route.permission, Permission) and route.permission in ROLE_PERMISSIONS[role]
        )
        if allowed:
            assert resp.status_code not in {401, 403}, (role, resp.text)  # type: ignore[attr-defined]
        else:
            assert resp.status_code == 403, (role, resp.text)  # type: ignore[attr-defined]
            assert resp.json()["permission"] == route.permission  # type: ignore[attr-defined]


def test_each_route_is_tagged_and_summarised(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for route in ROUTES:
        operation = spec["paths"][route.path][route.method.lower()]
        assert operation["tags"] == [route.tag]
        assert operation["summary"], name(route)
