"""http/headers.py: every answer of the app carries the security headers (JSON, problem+json,
the raw hot paths, refusals of the middleware, preflights, assets, the SDK, /docs), pages keep
their own policy, and HSTS goes only over TLS (directly, or through a trusted proxy)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.http import errors as http_errors
from consentry.http.headers import API_CSP, HSTS, PAGE_CSP
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth

ORIGIN = "https://shop.example.com"
JSON = {**auth(), "Content-Type": "application/json"}
SUBJECT = {"identities": [{"type": "cookie_id", "value": "ck-headers-0001"}]}


@pytest.fixture(scope="module")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("headers") / "data",
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
        max_body_bytes=4096,
    )


@pytest.fixture(scope="module")
def client(base_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(base_settings)) as test_client:
        yield test_client


def assert_api_headers(resp: Any) -> None:
    """What every API answer carries, success or problem."""
    headers = resp.headers
    assert headers["x-content-type-options"] == "nosniff", resp.request.url
    assert headers["cache-control"] == "no-store", resp.request.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-security-policy"] == API_CSP
    assert "frame-ancestors 'none'" in API_CSP
    # Plain HTTP: a browser must not be told to insist on TLS it did not use.
    assert "strict-transport-security" not in headers


def test_json_answers_carry_the_headers(client: TestClient) -> None:
    me = client.get("/v1/me", headers=auth())
    assert me.status_code == 200
    assert_api_headers(me)
    created = client.post("/v1/api-keys", headers=auth(), json={"role": "analyst"})
    # A new key is shown once: no cache may keep it.
    assert created.status_code == 201
    assert_api_headers(created)
    for public in ("/healthz", "/.well-known/jwks.json", "/openapi.json"):
        resp = client.get(public)
        assert resp.status_code == 200
        assert_api_headers(resp)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/me", {}, 401),
        ("GET", "/v1/no-such-thing", {"headers": auth()}, 404),
        ("PUT", "/v1/purposes/analytics", {"headers": auth(), "json": {}}, 422),
        ("PUT", "/v1/purposes/analytics", {"headers": JSON, "content": b"{"}, 400),
        # Refused by the body limits, before any route.
        ("POST", "/v1/consents", {"headers": auth(), "content": b"x" * 5000}, 413),
        (
            "POST",
            "/v1/consents",
            {"headers": {**auth(), "Content-Type": "text/xml"}, "content": b"<a/>"},
            415,
        ),
    ],
)
def test_problems_carry_the_headers(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    resp = client.request(method, path, **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == http_errors.PROBLEM_JSON
    assert_api_headers(resp)


def test_the_raw_routes_carry_the_headers(client: TestClient) -> None:
    check = {"subject": SUBJECT, "purpose": "analytics"}
    answered = client.post("/v1/consents/check", headers=auth(), json=check)
    assert answered.status_code == 200, answered.text
    assert_api_headers(answered)
    events = client.post("/v1/events", headers=auth(), json={"events": []})
    assert events.status_code == 200, events.text
    assert_api_headers(events)
    refused = client.post("/v1/events", headers=JSON, content=b"[")
    assert refused.status_code == 400
    assert_api_headers(refused)


def test_browser_key_answers_keep_their_cors_headers(client: TestClient) -> None:
    made = client.post(
        "/v1/api-keys", headers=auth(), json={"role": "browser", "origins": [ORIGIN]}
    ).json()
    preflight = client.options(
        "/v1/consents",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-consentry-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["x-content-type-options"] == "nosniff"
    purposes = client.get(
        "/v1/purposes", headers={"X-Consentry-Key": made["key"], "Origin": ORIGIN}
    )
    assert purposes.status_code == 200, purposes.text
    assert purposes.headers["access-control-allow-origin"] == ORIGIN
    assert_api_headers(purposes)


def test_the_sdk_keeps_its_caching_and_assets_are_revalidated(client: TestClient) -> None:
    sdk = client.get("/sdk/consentry.js")
    assert sdk.headers["cache-control"] == "public, max-age=300"
    assert sdk.headers["access-control-allow-origin"] == "*"
    assert sdk.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/consentry.css", "/docs/assets/swagger-ui-bundle.js"):
        resp = client.get(asset)
        assert resp.status_code == 200, asset
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["x-content-type-options"] == "nosniff"


def test_pages_keep_their_own_policy(client: TestClient) -> None:
    # The test client is no loopback address: the page refuses plain HTTP, with its headers.
    page = client.get("/portal")
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


def _inline_hashes(html: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    ]


def directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: d for d in (part.strip() for part in policy.split(";")) if d}


def test_the_docs_run_only_their_own_scripts(client: TestClient) -> None:
    docs = client.get("/docs")
    policy = directives(docs.headers["content-security-policy"])
    hashes = _inline_hashes(docs.text)
    # Swagger UI is started by one inline script: allowed by its hash, and nothing else inline.
    assert len(hashes) == 1
    assert policy["script-src"] == f"script-src 'self' {hashes[0]}"
    assert "unsafe-inline" not in policy["style-src"]
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["connect-src"] == "connect-src 'self'"
    assert docs.headers["x-frame-options"] == "DENY"
    assert docs.headers["cache-control"] == "no-store"
    redoc = client.get("/redoc")
    policy = directives(redoc.headers["content-security-policy"])
    assert policy["script-src"] == "script-src 'self'"
    assert policy["img-src"] == "img-src 'self' data:"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"


def test_hsts_only_over_tls(base_settings: Settings) -> None:
    with TestClient(create_app(base_settings), base_url="https://gateway.example.com") as tls:
        for resp in (tls.get("/healthz"), tls.get("/v1/me"), tls.get("/portal")):
            assert resp.headers["strict-transport-security"] == HSTS
    with TestClient(create_app(base_settings)) as plain:
        # Not believed without CONSENTRY_TRUST_PROXY.
        said = plain.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in said.headers
    trusting = dataclasses.replace(base_settings, trust_proxy=True)
    with TestClient(create_app(trusting)) as proxied:
        said = proxied.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert said.headers["strict-transport-security"] == HSTS
        plain_said = proxied.get("/healthz", headers={"X-Forwarded-Proto": "http"})
        assert "strict-transport-security" not in plain_said.headers


def test_an_unexpected_failure_carries_the_headers() -> None:
    app = FastAPI()
    http_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a fault of ours")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        resp = test_client.get("/boom")
    assert resp.status_code == 500
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
