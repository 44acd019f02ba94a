"""/docs, /redoc and /openapi.json: served offline, with the bearer scheme, every body and
every error documented, and readable operation names."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.auth.models import Permission
from consentry.http.routes import ROUTES
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("openapi") / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, master_key=MASTER_KEY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return dict(resp.json())


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(spec["paths"][path][method.lower()])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_nothing_from_another_host(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    # No CDN, no web fonts, no validator badge: a blank page offline is what this prevents.
    assert re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", html) == []
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) >= 2
    for url in assets:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    scripts = [u for u in assets if u.endswith(".js")]
    assert scripts
    for url in scripts:
        assert "javascript" in client.get(url).headers["content-type"]
    assert "/openapi.json" in html


def test_swagger_ui_keeps_the_key_and_calls_no_validator(client: TestClient) -> None:
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    assert '"persistAuthorization": true' in html


def test_every_keyed_operation_carries_the_bearer_scheme(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    for route in ROUTES:
        operation = _operation(spec, route.method, route.path)
        if route.permission is None:
            assert operation["security"] == [], route.path
        else:
            assert operation["security"] == [{"bearer": []}], route.path
        if isinstance(route.permission, Permission):
            assert f"`{route.permission.value}`" in operation["description"]


def test_the_authorize_button_sends_what_the_api_accepts(
    client: TestClient, spec: dict[str, Any]
) -> None:
    # Swagger UI sends `Authorization: Bearer <value>` for an http bearer scheme.
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert client.get("/v1/me", headers=auth()).json()["role"] == "admin"


def _reads_raw_body(endpoint: Any) -> bool:
    source = inspect.getsource(endpoint)
    return "request.body()" in source or "request.stream()" in source


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref:
        return dict(spec["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return schema


def test_raw_body_routes_document_their_body(spec: dict[str, Any]) -> None:
    raw = [r for r in ROUTES if _reads_raw_body(r.endpoint)]
    assert ("POST", "/v1/events") in {(r.method, r.path) for r in raw}
    for route in raw:
        body = _operation(spec, route.method, route.path).get("requestBody")
        assert body is not None, f"{route.method} {route.path} documents no body"
        assert body["required"] is True
        schema = _resolve(spec, body["content"]["application/json"]["schema"])
        assert schema["type"] == "object"
        assert schema["properties"]
    events = _resolve(
        spec,
        _operation(spec, "POST", "/v1/events")["requestBody"]["content"]["application/json"][
            "schema"
        ],
    )
    assert events["required"] == ["events"]
    assert events["properties"]["events"]["maxItems"] == 1000
    event = _resolve(spec, events["properties"]["events"]["items"])
    assert {"event_id", "event_type", "occurred_at", "subject"} <= set(event["required"])
    answer = _operation(spec, "POST", "/v1/events")["responses"]["200"]["content"]
    assert set(_resolve(spec, answer["application/json"]["schema"])["properties"]) == {
        "accepted",
        "rejected",
        "results",
    }


def test_every_operation_documents_its_errors_as_problem_json(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for route in ROUTES:
        responses = _operation(spec, route.method, route.path)["responses"]
        errors = {int(s) for s in responses if s.startswith(("4", "5"))}
        assert 422 in errors, route.path
        for status in errors:
            content = responses[str(status)]["content"]
            assert content == {"application/problem+json": {"schema": PROBLEM_REF}}
        if route.permission is not None:
            assert 401 in errors, route.path
        if isinstance(route.permission, Permission):
            assert 403 in errors, route.path
        if "{" in route.path:
            assert 404 in errors, route.path
    events = _operation(spec, "POST", "/v1/events")["responses"]
    assert {"400", "401", "403", "413", "415", "422"} <= set(events)
    assert "429" in _operation(spec, "POST", "/v1/query")["responses"]
    assert (
        "410" in _operation(spec, "GET", "/v1/subjects/{subject_id}/consent/history")["responses"]
    )
    assert "400" in _operation(spec, "GET", "/v1/events")["responses"]  # invalid_cursor
    assert "401" not in _operation(spec, "GET", "/healthz")["responses"]


def test_documented_statuses_are_the_ones_answered(
    client: TestClient, spec: dict[str, Any]
) -> None:
    """A few real answers, each found among its operation's documented statuses."""
    answers = [
        ("GET", "/v1/me", client.get("/v1/me")),
        ("POST", "/v1/events", client.post("/v1/events", headers=auth(), content=b"{")),
        (
            "POST",
            "/v1/events",
            client.post(
                "/v1/events", headers=auth() | {"Content-Type": "text/plain"}, content=b"x"
            ),
        ),
        ("GET", "/v1/subjects/{subject_id}", client.get("/v1/subjects/nope", headers=auth())),
        ("GET", "/v1/events", client.get("/v1/events?purpose=analytics&cursor=x", headers=auth())),
        ("POST", "/v1/query", client.post("/v1/query", headers=auth(), json={"purpose": 1})),
    ]
    for method, path, resp in answers:
        assert resp.status_code >= 400
        assert resp.headers["content-type"] == "application/problem+json"
        assert str(resp.status_code) in _operation(spec, method, path)["responses"], (
            method,
            path,
            resp.status_code,
        )


def test_operations_have_readable_names(spec: dict[str, Any]) -> None:
    ids = []
    for route in ROUTES:
        operation = _operation(spec, route.method, route.path)
        ids.append(operation["operationId"])
        # Not FastAPI's `post_events_v1_events_post`: a name a client generator can use.
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", operation["operationId"]), operation
        assert "_" not in operation["summary"], operation["summary"]
        assert operation["summary"][0].isupper()
    assert len(ids) == len(set(ids))
    assert _operation(spec, "POST", "/v1/events")["operationId"] == "postEvents"
    assert _operation(spec, "GET", "/v1/api-keys")["summary"] == "List API keys"
