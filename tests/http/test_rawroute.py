"""The hot paths' route class: served without FastAPI's dependency solving or pydantic, and
documented and refused exactly as when FastAPI validated the body against its model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.http.rawroute import RawRoute
from consentry.http.routes import ROUTES
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth
from tests.http.test_conventions import assert_problem

JSON = {"Content-Type": "application/json"}
HOT = {("POST", "/v1/events"), ("POST", "/v1/consents/check")}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("rawroute") / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, master_key=MASTER_KEY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _resolved(schema: Any, components: dict[str, Any]) -> Any:
    """The schema with every $ref replaced by what it names."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return _resolved(components[ref.rsplit("/", 1)[1]], components)
        return {key: _resolved(value, components) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolved(item, components) for item in schema]
    return schema


def _documented(doc: dict[str, Any], path: str) -> tuple[Any, Any]:
    """(request body, 200 answer) of POST `path`, references resolved."""
    operation = doc["paths"][path]["post"]
    components = doc["components"]["schemas"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return _resolved(operation["requestBody"], components), _resolved(answer, components)


# POST /v1/consents/check in /openapi.json when FastAPI validated its body against CheckIn
# (before the route read its raw body), references resolved: what it must stay.
_STRING_OR_NULL = [{"maxLength": 64, "type": "string"}, {"type": "null"}]
_IDENTITY = {
    "additionalProperties": False,
    "properties": {
        "type": {"maxLength": 32, "title": "Type", "type": "string"},
        "value": {"maxLength": 1024, "title": "Value", "type": "string"},
    },
    "required": ["type", "value"],
    "title": "IdentityIn",
    "type": "object",
}
_REF = {
    "additionalProperties": False,
    "properties": {
        "subject_id": {"anyOf": _STRING_OR_NULL, "default": None, "title": "Subject Id"},
        "identities": {
            "anyOf": [{"items": _IDENTITY, "type": "array"}, {"type": "null"}],
            "default": None,
            "title": "Identities",
        },
    },
    "title": "SubjectRefIn",
    "type": "object",
}
CHECK_BODY_BEFORE = {
    "content": {
        "application/json": {
            "schema": {
                "properties": {
                    "subject": _REF,
                    "purpose": {"type": "string", "maxLength": 64, "title": "Purpose"},
                },
                "additionalProperties": False,
                "type": "object",
                "required": ["subject", "purpose"],
                "title": "CheckIn",
            }
        }
    },
    "required": True,
}
CHECK_ANSWER_BEFORE = {
    "additionalProperties": True,
    "type": "object",
    "title": "Response Check Consent V1 Consents Check Post",
}


def test_the_consent_check_is_documented_as_when_pydantic_read_its_body(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    body, answer = _documented(doc, "/v1/consents/check")
    assert body == CHECK_BODY_BEFORE
    assert answer == CHECK_ANSWER_BEFORE
    # The same component names as before, for clients generated from the document.
    ref = doc["paths"]["/v1/consents/check"]["post"]["requestBody"]["content"]
    assert ref["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckIn"}
    assert {"CheckIn", "SubjectRefIn", "IdentityIn"} <= set(doc["components"]["schemas"])


def test_the_hot_paths_skip_fastapis_body_and_dependency_machinery(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    raw = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, RawRoute)
        for method in route.methods
    }
    assert raw == HOT == {(r.method, r.path) for r in ROUTES if r.raw}
    for route in app.routes:
        if isinstance(route, RawRoute):
            assert route.body_field is None
    # The router tries them first: a check is not matched against every other route.
    first = [getattr(r, "path", None) for r in app.routes[:3]]
    assert {"/v1/consents/check", "/v1/events"} <= set(first)


def test_the_document_keeps_the_url_tables_order(client: TestClient) -> None:
    paths = list(client.get("/openapi.json").json()["paths"])
    table = list(dict.fromkeys(route.path for route in ROUTES))
    assert paths == table


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        # The JSON rules come before the key check, as FastAPI reads a body first...
        (b"{", None, 400, "malformed_json"),
        (b"", None, 400, "malformed_json"),
        (b"[]", None, 422, "body_not_object"),
        (b'{"a": NaN}', "nope", 400, "invalid_number"),
        # ...then the key, then the body's fit to its model.
        (b'{"subject": {"subject_id": "s1"}}', None, 401, "unauthenticated"),
        (b'{"subject": {"subject_id": "s1"}}', "nope", 401, "unauthenticated"),
        (b'{"subject": {"subject_id": "s1"}}', ADMIN_KEY, 422, "invalid_request"),
        (b'{"subject": {}, "purpose": "analytics", "x": 1}', ADMIN_KEY, 422, "unknown_field"),
    ],
)
def test_the_consent_check_refuses_in_the_order_a_model_route_does(
    client: TestClient, body: bytes, key: str | None, status: int, code: str
) -> None:
    headers = JSON | ({"Authorization": f"Bearer {key}"} if key else {})
    resp = client.post("/v1/consents/check", content=body, headers=headers)
    assert_problem(resp, status, code)


def test_a_check_with_a_fault_in_every_field_names_each(client: TestClient) -> None:
    body = {"subject": {"subject_id": 1, "x": 1}, "purpose": "p" * 65}
    resp = client.post("/v1/consents/check", content=json.dumps(body), headers=auth() | JSON)
    assert_problem(resp, 422, "unknown_field")
    assert resp.json()["errors"] == [
        {
            "field": "subject.subject_id",
            "type": "string_type",
            "message": "Input should be a valid string",
        },
        {
            "field": "subject.x",
            "type": "extra_forbidden",
            "message": "Extra inputs are not permitted",
        },
        {
            "field": "purpose",
            "type": "string_too_long",
            "message": "String should have at most 64 characters",
        },
    ]


def test_a_check_answers_its_four_fields(client: TestClient) -> None:
    body = {"subject": {"identities": [{"type": "email", "value": "raw@example.com"}]}}
    resp = client.post(
        "/v1/consents/check",
        content=json.dumps(body | {"purpose": "analytics"}),
        headers=auth() | JSON,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert set(resp.json()) == {"allowed", "legal_basis", "reason", "version"}


def test_a_check_reads_no_environment_variable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's OpenTelemetry hook is off: it looked its providers up in the environment on
    every request (the gateway's metrics are Prometheus's)."""
    body = json.dumps({"subject": {"subject_id": "s1"}, "purpose": "analytics"})
    client.post("/v1/consents/check", content=body, headers=auth() | JSON)
    environ = type(os.environ)
    read: list[str] = []
    original = environ.__getitem__

    def counted(self: Any, key: str) -> Any:
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(environ, "__getitem__", counted)
    client.post("/v1/consents/check", content=body, headers=auth() | JSON)
    monkeypatch.undo()
    assert read == []
