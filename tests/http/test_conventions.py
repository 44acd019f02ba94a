"""API.md Conventions, through the HTTP API on both back-ends: auth, roles, errors, lists."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from consentry.auth.models import Role
from tests.conftest import auth

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    """The one error shape: problem+json with a stable code (pinned here)."""
    resp = response  # httpx Response
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:consentry:error:{code}"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return dict(body)


def make_key(client: TestClient, role: str) -> str:
    resp = client.post("/v1/api-keys", headers=auth(), json={"role": role, "label": "t"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def test_health_and_openapi_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/api-keys" in spec["paths"]
    assert client.get("/.well-known/jwks.json").json()["keys"]


def test_admin_key_from_settings_is_admin(client: TestClient) -> None:
    assert client.get("/v1/me", headers=auth()).json()["role"] == "admin"


# Browser keys are never bearer keys: tests/http/test_browser_routes.py walks them.
@pytest.mark.parametrize("role", [r.value for r in Role if r not in {Role.ADMIN, Role.BROWSER}])
def test_only_admin_manages_keys(client: TestClient, role: str) -> None:
    key = make_key(client, role)
    assert client.get("/v1/me", headers=auth(key)).json()["role"] == role
    body = assert_problem(client.get("/v1/api-keys", headers=auth(key)), 403, "forbidden")
    assert body["role"] == role
    assert body["permission"] == "keys:manage"


def test_roles_are_enforced_per_route(client: TestClient) -> None:
    analyst = make_key(client, "analyst")
    auditor = make_key(client, "auditor")
    collector = make_key(client, "collector")
    subject = {"subject": {"identities": [{"type": "email", "value": "role@example.com"}]}}
    assert_problem(
        client.post("/v1/subjects", headers=auth(analyst), json=subject), 403, "forbidden"
    )
    assert client.post("/v1/subjects", headers=auth(collector), json=subject).status_code == 201
    assert client.get("/v1/audit/entries", headers=auth(auditor)).status_code == 200
    assert_problem(client.get("/v1/audit/entries", headers=auth(collector)), 403, "forbidden")


def test_list_shape_and_cursor_pagination(client: TestClient) -> None:
    made = {make_key(client, "auditor").split("_")[1] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while pages < 10:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        body = client.get("/v1/api-keys", headers=auth(), params=params).json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= 2
        seen += [item["key_id"] for item in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert set(seen) == made
    assert len(seen) == len(set(seen))


def test_bad_cursor_is_a_problem(client: TestClient) -> None:
    for cursor in ("!!", "e30", "eyJjcmVhdGVkX2F0IjoxLCJrZXlfaWQiOjJ9"):
        resp = client.get("/v1/api-keys", headers=auth(), params={"cursor": cursor})
        assert_problem(resp, 400, "invalid_cursor")


def test_malformed_json_is_400(client: TestClient) -> None:
    resp = client.post(
        "/v1/api-keys",
        headers=auth() | {"Content-Type": "application/json"},
        content=b'{"role": ',
    )
    assert_problem(resp, 400, "malformed_json")


def test_wrong_types_are_422(client: TestClient) -> None:
    for body in ({"role": 5}, {"role": "dpo", "label": 7}, {"role": "boss"}):
        resp = client.post("/v1/api-keys", headers=auth(), json=body)
        problem = assert_problem(resp, 422, "invalid_request")
        assert problem["errors"]
    h = auth() | {"Content-Type": "application/json"}
    for top in ([], "dpo", 5, None):
        resp = client.post("/v1/api-keys", headers=h, content=json.dumps(top))
        assert_problem(resp, 422, "body_not_object")


def test_unknown_fields_are_refused(client: TestClient) -> None:
    resp = client.post("/v1/api-keys", headers=auth(), json={"role": "dpo", "colour": "red"})
    body = assert_problem(resp, 422, "unknown_field")
    assert "colour" in str(body["detail"])


def test_oversized_body_is_413(client: TestClient) -> None:
    big = b'{"role": "dpo", "label": "' + b"x" * (1024 * 1024) + b'"}'
    resp = client.post(
        "/v1/api-keys", headers=auth() | {"Content-Type": "application/json"}, content=big
    )
    assert_problem(resp, 413, "payload_too_large")


def test_oversized_streamed_body_is_413(client: TestClient) -> None:
    def chunks() -> object:
        for _ in range(20):
            yield b" " * 65536 * 2

    resp = client.post(
        "/v1/api-keys",
        headers=auth() | {"Content-Type": "application/json"},
        content=chunks(),  # type: ignore[arg-type]
    )
    assert_problem(resp, 413, "payload_too_large")


def test_non_json_body_is_415(client: TestClient) -> None:
    resp = client.post(
        "/v1/api-keys", headers=auth() | {"Content-Type": "text/plain"}, content=b"role=dpo"
    )
    assert_problem(resp, 415, "unsupported_media_type")


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=auth()), 404, "not_found")
    assert_problem(client.put("/healthz"), 405, "method_not_allowed")


def test_problem_does_not_echo_refused_values(client: TestClient) -> None:
    secret_value = "ana.private@example.com"
    resp = client.post(
        "/v1/subjects",
        headers=auth(),
        json={"subject": {"identities": [{"type": "email", "value": 12}]}, "x": secret_value},
    )
    assert resp.status_code == 422
    assert secret_value not in resp.text


def test_nul_characters_are_refused_not_stored(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: every such input is a 4xx, on both back-ends."""
    assert_problem(client.get("/v1/subjects/sub_%00", headers=auth()), 422, "invalid_request")
    assert_problem(
        client.get("/v1/audit/entries", headers=auth(), params={"subject_id": "a\x00"}),
        422,
        "invalid_request",
    )
    resp = client.post("/v1/api-keys", headers=auth(), json={"role": "dpo", "label": "a\x00b"})
    assert_problem(resp, 422, "invalid_request")
    resp = client.put(
        "/v1/notices/n1",
        headers=auth(),
        json={"version": "1", "text": "Notice\x00", "purposes": ["analytics"]},
    )
    assert_problem(resp, 422, "invalid_request")


def test_a_naive_or_overflowing_cursor_time_is_a_bad_cursor(client: TestClient) -> None:
    for moment in ("2026-01-01T00:00:00", "0001-01-01T00:00:00+01:00"):
        raw = json.dumps({"created_at": moment, "key_id": "x"}).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        resp = client.get("/v1/api-keys", headers=auth(), params={"cursor": cursor})
        assert_problem(resp, 400, "invalid_cursor")


def test_lone_surrogates_are_refused_not_echoed(client: TestClient) -> None:
    """A string that is not UTF-8 (a lone surrogate) is a 4xx, never a 500 or a stored value."""
    h = auth() | {"Content-Type": "application/json"}
    ana = {"identities": [{"type": "email", "value": "ana.s@example.com"}]}
    for body in (
        {"subject": ana, "purposes": ["x\ud800"]},
        {"subject": ana, "purposes": "all", "source": "web\ud800"},
    ):
        resp = client.post("/v1/consents/withdraw", headers=h, content=json.dumps(body))
        assert_problem(resp, 400, "invalid_utf8")
    body = {
        "subject": ana,
        "purposes": {"marketing": "denied"},
        "source": "web",
        "evidence": {"k": "\ud800"},
    }
    resp = client.post("/v1/consents", headers=h, content=json.dumps(body))
    assert_problem(resp, 400, "invalid_utf8")
