"""Every route of the app walked with a browser key: only those API.md gives a publishable key
answer other than 401/403, and those act only for the subject the request names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route as StarletteRoute

from consentry.app import create_app
from consentry.auth.browser import Scope
from consentry.auth.models import ROLE_PERMISSIONS, Permission, Role
from consentry.http.routes import ROUTES
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth

ORIGIN = "https://shop.example.com"
MINE = "ck-walk-mine-0001"
THEIRS = "ck-walk-theirs-0002"
# API.md, Operations: Browser SDK: purposes and notices; consent writes and withdrawals, the
# token and events of the subject the request names (and its consent state and checks).
ALLOWED = {
    ("GET", "/v1/purposes"),
    ("GET", "/v1/purposes/{key}"),
    ("GET", "/v1/notices/{notice_id}"),
    ("POST", "/v1/consents"),
    ("POST", "/v1/consents/withdraw"),
    ("POST", "/v1/consents/check"),
    ("GET", "/v1/subjects/{subject_id}/consent"),
    ("GET", "/v1/subjects/{subject_id}/consent/token"),
    ("POST", "/v1/events"),
}


def cookie(value: str) -> dict[str, Any]:
    return {"identities": [{"type": "cookie_id", "value": value}]}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("browser-walk") / "data",
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
        browser_rate_limit=0,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def world(app_client: TestClient) -> dict[str, str]:
    """A browser key, a notice, a schema, and two subjects: the visitor's and another's."""
    c = app_client
    made = c.post(
        "/v1/api-keys", headers=auth(), json={"role": "browser", "origins": [ORIGIN]}
    ).json()
    notice = {"version": "1", "text": "We count visits.", "purposes": ["analytics"]}
    assert c.put("/v1/notices/site", headers=auth(), json=notice).status_code == 201
    schema = {
        "purposes": ["analytics"],
        "fields": {
            "page": {"type": "string", "category": "system.operations", "treatment": "keep"}
        },
    }
    assert c.put("/v1/schemas/page_view", headers=auth(), json=schema).status_code == 201
    ids = {}
    for name, value in (("mine", MINE), ("theirs", THEIRS)):
        body = {"subject": cookie(value), "purposes": {"analytics": "denied"}, "source": "web"}
        resp = c.post("/v1/consents", headers=auth(), json=body)
        assert resp.status_code == 200, resp.text
        ids[name] = resp.json()["subject_id"]
    return {"key": made["key"], **ids}


def browser(world: dict[str, str], subject: str = MINE) -> dict[str, str]:
    return {
        "X-Consentry-Key": world["key"],
        "Origin": ORIGIN,
        "X-Consentry-Subject": f"cookie_id={subject}",
    }


def served() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, API and pages alike."""
    app = create_app(Settings(admin_key=ADMIN_KEY, master_key=MASTER_KEY))
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, StarletteRoute)
        for method in route.methods or ()
        if method != "HEAD"
    )


def request_for(
    method: str, path: str, world: dict[str, str], subject: str
) -> tuple[str, dict[str, Any]]:
    """A well-formed request of the route for `subject` (the visitor's or another's)."""
    subject_id = world["mine"] if subject == MINE else world["theirs"]
    filled = (
        path.replace("{subject_id}", subject_id)
        .replace("{key}", "analytics")
        .replace("{notice_id}", "site")
    )
    filled = re.sub(r"\{[a-z_]+\}", "zz_unknown", filled)
    bodies: dict[str, Any] = {
        "/v1/consents": {
            "subject": cookie(subject),
            "purposes": {"analytics": "denied"},
            "source": "web",
        },
        "/v1/consents/withdraw": {"subject": cookie(subject), "purposes": "all", "source": "web"},
        "/v1/consents/check": {"subject": cookie(subject), "purpose": "analytics"},
        "/v1/events": {
            "events": [
                {
                    "event_id": f"walk-{subject}",
                    "event_type": "page_view",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "subject": cookie(subject),
                    "properties": {"page": "/"},
                }
            ]
        },
    }
    kwargs: dict[str, Any] = {}
    if method in {"POST", "PUT", "PATCH", "DELETE"}:
        kwargs["json"] = bodies.get(path, {})
    return filled, kwargs


def test_the_allowed_routes_are_the_ones_the_table_opens_to_browser_keys() -> None:
    opened = {(r.method, r.path) for r in ROUTES if r.browser is not None}
    assert opened == ALLOWED
    for route in ROUTES:
        if route.browser is not None:
            assert isinstance(route.permission, Permission)
            assert route.permission in ROLE_PERMISSIONS[Role.BROWSER], route.path


@pytest.mark.parametrize(("method", "path"), served(), ids=str)
def test_a_browser_key_reaches_only_its_routes(
    app_client: TestClient, world: dict[str, str], method: str, path: str
) -> None:
    url, kwargs = request_for(method, path, world, MINE)
    resp = app_client.request(method, url, headers=browser(world), **kwargs)
    if (method, path) in ALLOWED:
        assert resp.status_code not in {401, 403}, resp.text
        assert resp.status_code < 500, resp.text
        return
    anonymous = app_client.request(method, url, **kwargs)
    if anonymous.status_code in {401, 403} or path.startswith("/v1/"):
        # A valid publishable key from its own origin: still refused.
        assert resp.status_code in {401, 403}, resp.text
    else:
        # Public: the key changes nothing.
        assert resp.status_code == anonymous.status_code, resp.text


@pytest.mark.parametrize(
    ("method", "path"),
    sorted((r.method, r.path) for r in ROUTES if r.browser not in {None, Scope.NONE}),
    ids=str,
)
def test_a_browser_key_refuses_another_subject(
    app_client: TestClient, world: dict[str, str], method: str, path: str
) -> None:
    url, kwargs = request_for(method, path, world, THEIRS)
    resp = app_client.request(method, url, headers=browser(world), **kwargs)
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "subject_not_allowed"
    # Named by the other's own header, the same request goes through: the refusal was the
    # subject's, not the route's.
    resp = app_client.request(method, url, headers=browser(world, THEIRS), **kwargs)
    assert resp.status_code not in {401, 403}, resp.text
