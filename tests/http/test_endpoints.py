"""A system's endpoints reach public addresses only (both back-ends): loopback, link-local and
private hosts are refused as `endpoint_not_allowed` unless CONSENTRY_ALLOW_PRIVATE_ENDPOINTS,
and the delivery worker checks the address again before it connects."""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.delivery.sinks import WebhookSink
from consentry.governance import endpoints
from consentry.governance.handlers import endpoint_resolver
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.governance.test_datamap import CRM, put
from tests.http.test_conventions import assert_problem

SLOW_SECONDS = 1.6
PRIVATE_HOSTS = [
    "127.0.0.1",
    "127.1.2.3",
    "localhost",
    "[::1]",
    "0.0.0.0",  # noqa: S104 - an address refused, not bound
    "10.0.0.8",
    "172.16.5.4",
    "192.168.1.20",
    "169.254.169.254",
    "100.64.0.1",
    "[fe80::1]",
    "[fd00::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:10.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::808:808]",
    "[64:ff9b:1::a00:1]",
    "[2002:7f00:1::1]",
    "[2002:a00:1::1]",
    "[::127.0.0.1]",
    "[::8.8.8.8]",
    "[fec0::1]",
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_a_private_endpoint_is_refused(client: TestClient, host: str) -> None:
    for field, url in (
        ("endpoint", f"http://{host}:8080/hook"),
        ("rights_endpoint", f"https://{host}/r"),
    ):
        body = assert_problem(put(client, "crm", CRM | {field: url}), 422, "endpoint_not_allowed")
        assert body["field"] == field
    kafka = CRM | {"kind": "kafka", "endpoint": f"kafka://{host}:9092/consented"}
    assert_problem(put(client, "stream", kafka), 422, "endpoint_not_allowed")
    assert client.get("/v1/systems", headers=auth()).json()["items"] == []


def test_public_and_unresolved_names_are_accepted(client: TestClient) -> None:
    """A name that does not resolve now (no DNS here) is stored; the worker checks it again
    before each connection (docs/decisions.md)."""
    assert put(client, "crm", CRM).status_code == 201
    # An address of example.com's (IANA's), public, written out.
    public = CRM | {"endpoint": "https://93.184.215.14/hook"}
    assert put(client, "crm2", public).status_code == 201
    # 6to4 around a public IPv4 address (8.8.8.8): the embedded address decides.
    sixtofour = CRM | {"endpoint": "https://[2002:808:808::1]/hook"}
    assert put(client, "crm3", sixtofour).status_code == 201


@pytest.fixture
def private_ok(settings: Settings) -> Iterator[TestClient]:
    allowed = dataclasses.replace(settings, allow_private_endpoints=True)
    with TestClient(create_app(allowed)) as client:
        yield client


def test_the_setting_allows_private_endpoints(private_ok: TestClient) -> None:
    for host in ("127.0.0.1", "localhost", "[::1]", "10.0.0.8"):
        resp = put(private_ok, "crm", CRM | {"endpoint": f"http://{host}:8080/hook"})
        assert resp.status_code in (200, 201), resp.text


def test_the_worker_checks_the_address_it_connects_to() -> None:
    """A name stored while it resolved elsewhere (here `localhost`, which resolves to
    loopback) is not connected to: the check runs on every send."""
    with receiver() as hook:
        url = hook.url.replace("127.0.0.1", "localhost")
        guarded = WebhookSink(2.0)
        try:
            outcome = guarded.send(url, b"{}", "sig")
            assert (outcome.ok, outcome.error) == (False, "endpoint_not_allowed")
            outcome = guarded.send(hook.url, b"{}", "sig")
            assert (outcome.ok, outcome.error) == (False, "endpoint_not_allowed")
        finally:
            guarded.close()
        assert hook.attempts == 0
        allowed = WebhookSink(2.0, allow_private=True)
        try:
            assert allowed.send(url, b"{}", "sig").ok
        finally:
            allowed.close()
        assert hook.attempts == 1


def test_a_slow_name_does_not_hold_the_write_lock(client: TestClient) -> None:
    """The endpoint's name resolves (here slowly, by a resolver given to the route) before
    the write transaction opens: a consent recorded meanwhile does not wait for it."""
    app = client.app
    assert isinstance(app, FastAPI)
    asked: list[str] = []

    def slow(host: str, port: int) -> list[endpoints.IPAddress]:
        asked.append(host)
        time.sleep(SLOW_SECONDS)
        return [ipaddress.ip_address("93.184.215.14")]

    app.dependency_overrides[endpoint_resolver] = lambda: slow
    stored: list[Any] = []
    putting = threading.Thread(
        target=lambda: stored.append(put(client, "crm", CRM | {"rights_endpoint": None}))
    )
    putting.start()
    try:
        time.sleep(SLOW_SECONDS / 4)
        started = time.monotonic()
        consent = client.post(
            "/v1/consents",
            headers=auth(),
            json={
                "subject": {"identities": [{"type": "email", "value": "lee@example.com"}]},
                "purposes": {"analytics": "denied"},
                "source": "web",
            },
        )
        took = time.monotonic() - started
    finally:
        putting.join()
        app.dependency_overrides.clear()
    assert consent.status_code == 200, consent.text
    assert asked == ["crm.example.com"]
    assert stored[0].status_code == 201, stored[0].text
    assert took < SLOW_SECONDS / 2, took


@pytest.mark.parametrize(
    "url",
    ["http://\uff05\uff131\uff127.0.0.1:8080/", "http://\uff11\uff127.0.0.1/hook"],
    ids=["fullwidth_percent", "fullwidth_digits"],
)
def test_a_url_the_delivery_client_cannot_send_to_is_invalid(
    private_ok: TestClient, url: str
) -> None:
    """Refused when stored (even with private endpoints allowed), so no delivery pass meets
    it."""
    for field in ("endpoint", "rights_endpoint"):
        resp = put(private_ok, "crm", CRM | {field: url})
        body = assert_problem(resp, 422, "invalid_endpoint")
        assert body["field"] == field
