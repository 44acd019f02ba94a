"""The transport rule of the pages (TLS, loopback excepted) and the headers every page and
asset carries, through a tiny app built inline."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

from consentry.http.headers import PAGE_CSP as CSP
from consentry.http.headers import SecurityHeaders
from consentry.settings import Settings
from consentry.web import routes
from consentry.web.brand import Brand
from consentry.web.pages import render
from consentry.web.routes import Form


def hello(request: Request, form: Form) -> Response:
    detail = form.get("name", "Hi")
    return render(
        request,
        "problem.html",
        brand=Brand("Consentry", None, None),
        title="Hello",
        detail=detail,
        back=None,
    )


def _client(settings: Settings, client: tuple[str, int], base: str) -> TestClient:
    app = FastAPI()
    routes.register(app, settings, {("GET", "/hello"): hello, ("POST", "/hello"): hello})
    app.add_middleware(SecurityHeaders, trust_proxy=settings.trust_proxy, assets=("/static/",))
    return TestClient(app, base_url=base, client=client)


@pytest.fixture
def plain() -> Settings:
    return Settings()


def test_a_loopback_client_gets_pages_over_plain_http(plain: Settings) -> None:
    resp = _client(plain, ("127.0.0.1", 5000), "http://127.0.0.1:8000").get("/hello")
    assert resp.status_code == 200
    assert resp.headers["content-security-policy"] == CSP
    assert "unsafe-inline" not in CSP
    assert "frame-ancestors 'none'" in CSP
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert "<h1>Hello</h1>" in resp.text


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        (("203.0.113.9", 5000), {}),
        # A proxy on this machine forwarding someone else: not a loopback visitor.
        (("127.0.0.1", 5000), {"X-Forwarded-For": "203.0.113.9"}),
        (("127.0.0.1", 5000), {"X-Real-IP": "203.0.113.9"}),
        (("::1", 5000), {"Forwarded": "for=203.0.113.9"}),
        # Without CONSENTRY_TRUST_PROXY, what a client says of the scheme is not believed.
        (("203.0.113.9", 5000), {"X-Forwarded-Proto": "https"}),
    ],
)
def test_anyone_else_needs_tls(
    plain: Settings, client: tuple[str, int], headers: dict[str, str]
) -> None:
    resp = _client(plain, client, "http://gateway.example.com").get("/hello", headers=headers)
    assert resp.status_code == 403
    assert "HTTPS" in resp.text
    assert resp.headers["content-security-policy"] == CSP


def test_tls_directly_or_through_a_trusted_proxy(plain: Settings) -> None:
    direct = _client(plain, ("203.0.113.9", 5000), "https://gateway.example.com")
    assert direct.get("/hello").status_code == 200
    trusting = dataclasses.replace(plain, trust_proxy=True)
    proxied = _client(trusting, ("10.0.0.2", 5000), "http://gateway.example.com")
    assert proxied.get("/hello", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    assert proxied.get("/hello", headers={"X-Forwarded-Proto": "http"}).status_code == 403


def test_assets_are_served_with_the_page_headers(plain: Settings) -> None:
    resp = _client(plain, ("127.0.0.1", 5000), "http://127.0.0.1:8000").get("/static/consentry.css")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/css")
    assert resp.headers["x-content-type-options"] == "nosniff"
    # Nothing personal: kept, but asked for again (by ETag) before each use.
    assert resp.headers["cache-control"] == "no-cache"
    assert "etag" in resp.headers
    assert "focus-visible" in resp.text


def test_forms_are_read_and_bad_ones_refused(plain: Settings) -> None:
    client = _client(plain, ("127.0.0.1", 5000), "http://127.0.0.1:8000")
    assert (
        '<p role="alert">Ada &amp; Bo</p>' in client.post("/hello", data={"name": "Ada & Bo"}).text
    )
    as_json = client.post("/hello", json={"name": "x"})
    assert as_json.status_code == 400
    not_utf8 = client.post(
        "/hello", content=b"name=%FF", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert not_utf8.status_code == 400
    too_many = "&".join(f"f{n}=1" for n in range(60))
    crowded = client.post(
        "/hello", content=too_many, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert crowded.status_code == 400
