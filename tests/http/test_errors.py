"""http/errors.py: every ConsentryError subclass has one status, and every failure leaves the
API as the one problem+json shape without the values a caller sent."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from consentry import errors as e
from consentry.http import errors as http_errors
from consentry.http.errors import STATUS, problem_bytes, status_of
from consentry.storage.errors import SerializationFailure

# The classes that are the server's fault, so 5xx by design.
SERVER_FAULTS = {e.ConsentryError, e.AuditTreeDamaged}


@pytest.mark.parametrize("cls", e.all_error_classes(), ids=lambda cls: cls.code)
def test_every_error_class_maps_to_a_status(cls: type[e.ConsentryError]) -> None:
    status = status_of(cls)
    assert 400 <= status < 600
    # The nearest listed ancestor decides: the status is never a guess.
    listed = next(k for k in cls.__mro__ if k in STATUS)
    assert status == STATUS[listed]
    if listed is e.ConsentryError:
        assert cls in SERVER_FAULTS, f"{cls.__name__} has no status of its own (500)"


def test_bad_input_is_never_a_5xx() -> None:
    for cls in e.all_error_classes():
        if issubclass(cls, e.InvalidRequest):
            assert 400 <= status_of(cls) < 500, cls.code


def test_the_problem_body_is_the_one_shape_with_only_safe_context() -> None:
    error = e.NotFound(
        "no such subject",
        subject_id="sub_1",
        count=2,
        flag=True,
        nothing=None,
        values=["ann@example.com"],
        nested={"email": "ann@example.com"},
        status=200,
        code="other",
    )
    body = json.loads(problem_bytes(error))
    assert body == {
        "type": "urn:consentry:error:not_found",
        "title": error.title,
        "status": 404,
        "detail": "no such subject",
        "code": "not_found",
        "subject_id": "sub_1",
        "count": 2,
        "flag": True,
        "nothing": None,
    }


def test_rate_limited_says_when_to_try_again() -> None:
    response = http_errors.problem(e.RateLimited("too many", retry_after=42))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert json.loads(bytes(response.body))["retry_after"] == 42


def test_a_lone_surrogate_in_a_detail_still_renders() -> None:
    body = problem_bytes(e.InvalidRequest("bad value \ud800"))
    assert body.isascii()
    assert json.loads(body)["detail"] == "bad value \ud800"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    age: int


def tiny_app() -> FastAPI:
    app = FastAPI()
    http_errors.install(app)

    @app.get("/raise/{name}")
    def raise_error(name: str) -> None:
        raise getattr(e, name)("refused", subject_id="sub_1")

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("ann@example.com broke it")

    @app.get("/lock-cycle")
    def lock_cycle() -> None:
        raise SerializationFailure("DeadlockDetected")

    @app.post("/strict")
    def strict(body: Strict) -> dict[str, int]:
        return {"age": body.age}

    @app.get("/who")
    def who(request: Request) -> None:
        return None

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(tiny_app(), raise_server_exceptions=False)


def problem_of(resp: object, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == http_errors.PROBLEM_JSON  # type: ignore[attr-defined]
    body = dict(resp.json())  # type: ignore[attr-defined]
    assert (body["status"], body["code"]) == (status, code)
    return body


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("NotFound", 404, "not_found"),
        ("Conflict", 409, "conflict"),
        ("InvalidCursor", 400, "invalid_cursor"),
        ("StorageUnavailable", 503, "storage_unavailable"),
    ],
)
def test_a_raised_error_is_its_problem(
    client: TestClient, name: str, status: int, code: str
) -> None:
    body = problem_of(client.get(f"/raise/{name}"), status, code)
    assert body["subject_id"] == "sub_1"


def test_401_asks_for_a_bearer_key_and_408_closes_the_connection(client: TestClient) -> None:
    resp = client.get("/raise/Unauthenticated")
    problem_of(resp, 401, "unauthenticated")
    assert resp.headers["www-authenticate"] == "Bearer"
    resp = client.get("/raise/BodyTimeout")
    problem_of(resp, 408, "body_timeout")
    assert resp.headers["connection"] == "close"


def test_an_unexpected_exception_is_a_500_logged_by_type_only(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        resp = client.get("/crash")
    body = problem_of(resp, 500, "internal_error")
    assert "ann@example.com" not in resp.text
    assert "RuntimeError" in caplog.text
    assert "ann@example.com" not in caplog.text
    assert body["detail"] == "an unexpected error occurred; it has been logged"


def test_a_lock_cycle_the_database_broke_is_a_503_to_send_again(client: TestClient) -> None:
    # PostgreSQL broke a deadlock or a serialization conflict by failing this transaction:
    # nothing of it was written, and the same request sent again may well succeed.
    resp = client.get("/lock-cycle")
    body = problem_of(resp, 503, "storage_unavailable")
    assert resp.headers["retry-after"] == "1"
    assert "send the request again" in body["detail"]


def test_validation_errors_name_fields_without_echoing_values(client: TestClient) -> None:
    resp = client.post("/strict", json={"age": "ann@example.com"})
    body = problem_of(resp, 422, "invalid_request")
    assert "ann@example.com" not in resp.text
    assert body["errors"] == [
        {"field": "age", "type": "int_parsing", "message": body["errors"][0]["message"]}  # type: ignore[index]
    ]
    problem_of(client.post("/strict", json={"age": 1, "email": "x"}), 422, "unknown_field")
    problem_of(
        client.post("/strict", content=b"{", headers={"content-type": "application/json"}),
        400,
        "malformed_json",
    )


def test_router_answers_are_problems(client: TestClient) -> None:
    problem_of(client.get("/nowhere"), 404, "not_found")
    problem_of(client.delete("/who"), 405, "method_not_allowed")
