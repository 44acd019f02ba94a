"""/docs, /redoc and /openapi.json: served offline, with the bearer scheme, every body and
every error documented, and readable operation names."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.auth.models import Permission
from consentry.http.openapi import YAML_BODIES
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
    assert '<html lang="en">' in html


def test_swagger_ui_keeps_no_key_and_calls_no_validator(client: TestClient) -> None:
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    # Kept, the admin key would sit in localStorage, readable by every page of this origin.
    assert '"persistAuthorization": false' in html
    assert '"persistAuthorization": true' not in html


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
    raw = [r for r in ROUTES if r.raw or _reads_raw_body(r.endpoint)]
    assert {("POST", "/v1/events"), ("POST", "/v1/consents/check")} <= {
        (r.method, r.path) for r in raw
    }
    for route in raw:
        body = _operation(spec, route.method, route.path).get("requestBody")
        assert body is not None, f"{route.method} {route.path} documents no body"
        assert body["required"] is True
        if (route.method, route.path) in YAML_BODIES:
            # A fideslang document: YAML, not JSON (fideslang's models define its shape).
            assert body["content"] == {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            }
            continue
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
    # As the decoder: no unknown field in a batch or an event.
    assert events["additionalProperties"] is False
    assert event["additionalProperties"] is False
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


def _events_body(spec: dict[str, Any]) -> dict[str, Any]:
    body = _operation(spec, "POST", "/v1/events")["requestBody"]["content"]["application/json"]
    return _resolve(spec, body["schema"])


def test_the_events_body_schema_says_what_the_server_does(
    client: TestClient, spec: dict[str, Any]
) -> None:
    batch = _events_body(spec)
    event = _resolve(spec, batch["properties"]["events"]["items"])
    # An empty batch is answered 200 with no result: the document allows it.
    assert batch["properties"]["events"].get("minItems", 0) == 0
    empty = client.post("/v1/events", headers=auth(), json={"events": []})
    assert empty.status_code == 200
    assert empty.json() == {"accepted": 0, "rejected": 0, "results": []}
    # A field the schema lacks is refused, in the batch (422) or in an event (rejected).
    assert "extra" not in batch["properties"]
    assert batch["additionalProperties"] is False
    extra = client.post("/v1/events", headers=auth(), json={"events": [], "extra": 1})
    assert extra.status_code == 422
    assert extra.json()["code"] == "invalid_batch"
    assert event["additionalProperties"] is False
    odd = {
        "event_id": "evt-odd",
        "event_type": "page_view",
        "occurred_at": "2026-11-22T10:00:00Z",
        "subject": {"subject_id": UNKNOWN_SUBJECT},
        "extra": 1,
    }
    answer = client.post("/v1/events", headers=auth(), json={"events": [odd]}).json()
    assert answer["results"][0]["code"] == "invalid_event"


UNKNOWN_SUBJECT = "sub_" + "0" * 24


def _check_documented(spec: dict[str, Any], method: str, path: str, resp: Any) -> None:
    """The answer's status is documented for its operation, with its media type (or, for
    204, with no body)."""
    responses = _operation(spec, method, path)["responses"]
    where = (method, path, resp.status_code, resp.text[:200])
    assert str(resp.status_code) in responses, where
    documented = responses[str(resp.status_code)]
    if resp.status_code == 204:
        assert "content" not in documented, where
        assert resp.content == b"", where
        return
    media = resp.headers["content-type"].split(";")[0].strip()
    assert media in documented["content"], (*where, media, list(documented["content"]))


def test_success_statuses_and_media_types_are_the_ones_answered(
    client: TestClient, spec: dict[str, Any]
) -> None:
    """A walk through the routes whose successes are not a plain 200 JSON answer: every real
    answer is documented, status and media type."""
    h = auth()
    answers: list[tuple[str, str, Any]] = []

    def call(method: str, path: str, url: str, expect: int, **kwargs: Any) -> Any:
        resp = client.request(method, url, headers=h | kwargs.pop("headers", {}), **kwargs)
        assert resp.status_code == expect, (method, url, resp.status_code, resp.text[:300])
        answers.append((method, path, resp))
        return resp

    call("POST", "/v1/api-keys", "/v1/api-keys", 201, json={"role": "collector", "label": "x"})
    who = {"identities": [{"type": "email", "value": "openapi@example.com"}]}
    subject = {"subject": who, "jurisdiction": "UK"}
    call("POST", "/v1/subjects", "/v1/subjects", 201, json=subject)
    call("POST", "/v1/subjects", "/v1/subjects", 200, json=subject)
    purpose = {"name": "Docs", "legal_basis": "consent", "retention_days": 30}
    call("PUT", "/v1/purposes/{key}", "/v1/purposes/docs_test", 201, json=purpose)
    call("PUT", "/v1/purposes/{key}", "/v1/purposes/docs_test", 200, json=purpose)
    notice = {"version": "1", "text": "Docs.", "purposes": ["analytics"]}
    call("PUT", "/v1/notices/{notice_id}", "/v1/notices/docs", 201, json=notice)
    call("PUT", "/v1/notices/{notice_id}", "/v1/notices/docs", 200, json=notice)
    schema = {
        "purposes": ["analytics"],
        "fields": {"url": {"type": "string", "category": "system.operations", "treatment": "keep"}},
    }
    call("PUT", "/v1/schemas/{event_type}", "/v1/schemas/docs_view", 201, json=schema)
    call("PUT", "/v1/schemas/{event_type}", "/v1/schemas/docs_view", 200, json=schema)
    system = {
        "name": "Docs warehouse",
        "kind": "webhook",
        "endpoint": "https://warehouse.example.com/in",
        "purposes": ["analytics"],
        "data_categories": ["system.operations"],
        "region": "US",
        "transfer_mechanism": "dpf",
        "dpf_certified_until": "2027-09-30",
        "vendor": "Example Warehouse Inc.",
        "dpa_signed": True,
    }
    path = "/v1/systems/{system_id}"
    call("PUT", path, "/v1/systems/docs_wh", 201, json=system)
    call("PUT", path, "/v1/systems/docs_wh", 200, json=system)
    call("DELETE", path, "/v1/systems/docs_wh", 204)
    request = {
        "type": "access",
        "subject": who,
        "jurisdiction": "UK",
        "verification": {"method": "account_login", "level": "reasonable"},
    }
    call("POST", "/v1/requests", "/v1/requests", 202, json=request)
    call("GET", "/v1/ropa", "/v1/ropa", 200)
    call("GET", "/v1/ropa", "/v1/ropa", 200, headers={"Accept": "text/csv"})
    call("GET", "/v1/ropa", "/v1/ropa?format=csv", 200)
    for fmt in ("csv", "jsonl"):
        export = {"purpose": "analytics", "format": fmt}
        export_id = call("POST", "/v1/exports", "/v1/exports", 200, json=export).json()
        download = f"/v1/exports/{export_id['export_id']}/download"
        call("GET", "/v1/exports/{export_id}/download", download, 200)
    # A subject_id that names nobody: 404 subject_not_found.
    nobody = {"subject": {"subject_id": UNKNOWN_SUBJECT}}
    for url, body in (
        ("/v1/consents", nobody | {"purposes": {"analytics": "denied"}, "source": "web"}),
        ("/v1/consents/withdraw", nobody | {"purposes": "all"}),
        ("/v1/subjects", nobody),
    ):
        resp = call("POST", url, url, 404, json=body)
        assert resp.json()["code"] == "subject_not_found"
    for method, path, resp in answers:
        _check_documented(spec, method, path, resp)
    # Statuses a handler never answers are not documented.
    assert "200" not in _operation(spec, "POST", "/v1/api-keys")["responses"]
    assert "200" not in _operation(spec, "POST", "/v1/requests")["responses"]
    ack = _operation(spec, "POST", "/v1/rights-notices/{notice_id}/ack")["responses"]
    assert "200" not in ack
    assert "content" not in ack["204"]
    download = _operation(spec, "GET", "/v1/exports/{export_id}/download")["responses"]["200"]
    assert set(download["content"]) == {"application/x-ndjson", "text/csv"}


NOTICE = Path(__file__).resolve().parents[2] / "docs" / "third-party.md"


def test_the_third_party_notice_names_what_is_served(client: TestClient) -> None:
    """Swagger UI (Apache-2.0) and ReDoc (MIT) are named with the versions actually served."""
    swagger = client.get("/docs/assets/swagger-ui-bundle.js").text
    redoc = client.get("/docs/assets/redoc.standalone.js").text
    swagger_version = re.search(r'PACKAGE_VERSION:"([\d.]+)"', swagger)
    redoc_version = re.search(r'" ReDoc Version: ","([\d.]+)"', redoc)
    assert swagger_version is not None
    assert redoc_version is not None
    rows = {
        line.split("|")[1].strip(): line
        for line in NOTICE.read_text().splitlines()
        if line.startswith("| ")
    }
    assert f"| {swagger_version[1]} | Apache-2.0" in rows["Swagger UI"]
    assert f"| {redoc_version[1]} | MIT" in rows["ReDoc"]
    pin = next(p for p in _project_dependencies() if p.startswith("fastapi-offline=="))
    assert f"| {pin.split('==')[1]} | MIT" in rows["fastapi-offline"]
    readme = (NOTICE.parents[1] / "README.md").read_text()
    assert "(docs/third-party.md)" in readme


def _project_dependencies() -> list[str]:
    pyproject = tomllib.loads((NOTICE.parents[1] / "pyproject.toml").read_text())
    return list(pyproject["project"]["dependencies"])
