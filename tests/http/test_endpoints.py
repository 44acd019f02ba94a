"""A system's endpoints reach public addresses only (both back-ends): loopback, link-local and
private hosts are refused as `endpoint_not_allowed` unless CONSENTRY_ALLOW_PRIVATE_ENDPOINTS,
and the delivery worker checks the address again before it connects."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.delivery.sinks import WebhookSink
from consentry.settings import Settings
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.governance.test_datamap import CRM, put
from tests.http.test_conventions import assert_problem

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
