"""http/routes.py: the app serves exactly the routes of the URL table, each tagged and
summarised (each behind its permission: tests/http/test_role_matrix.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.http.routes import ROUTES, Route
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY

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


def test_each_route_is_tagged_and_summarised(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for route in ROUTES:
        operation = spec["paths"][route.path][route.method.lower()]
        assert operation["tags"] == [route.tag]
        assert operation["summary"], name(route)
