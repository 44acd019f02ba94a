"""governance/endpoints.py: a system's endpoints reach public addresses only (the rule itself
without I/O; stored systems on both back-ends): loopback, link-local and
private hosts are refused as `endpoint_not_allowed` unless CONSENTRY_ALLOW_PRIVATE_ENDPOINTS,
and the delivery worker checks the address again before it connects."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.delivery.sinks import WebhookSink
from consentry.errors import EndpointNotAllowed
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


PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2606:4700:4700::1111"]
NOT_PUBLIC = [
    "127.0.0.1",
    "0.0.0.0",  # noqa: S104 - an address refused, not bound
    "10.1.2.3",
    "172.31.0.1",
    "192.168.0.1",
    "169.254.1.1",
    "100.64.0.1",
    "192.0.2.1",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd12::1",
    "ff02::1",
    "2001:db8::1",
    "fec0::1",
    "64:ff9b::808:808",
    "64:ff9b:1::808:808",
    "::8.8.8.8",
]


@pytest.mark.parametrize("text", PUBLIC)
def test_a_public_unicast_address_is_allowed(text: str) -> None:
    assert endpoints.address_allowed(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_a_non_public_address_is_refused(text: str) -> None:
    assert not endpoints.address_allowed(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["8.8.8.8", "127.0.0.1", "10.0.0.1", "100.64.0.1"])
def test_an_embedded_ipv4_address_decides(text: str) -> None:
    v4 = ipaddress.IPv4Address(text)
    mapped = ipaddress.IPv6Address(f"::ffff:{text}")
    sixtofour = ipaddress.IPv6Address(f"2002:{int(v4) >> 16:x}:{int(v4) & 0xFFFF:x}::1")
    verdict = endpoints.address_allowed(v4)
    assert endpoints.address_allowed(mapped) is verdict
    assert endpoints.address_allowed(sixtofour) is verdict


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("crm.example.com", None),
        ("10.0.0.1.example.com", None),
    ],
)
def test_literal_reads_an_address_written_out(host: str, address: str | None) -> None:
    found = endpoints.literal(host)
    assert (str(found) if found is not None else None) == address


def resolver_of(*answers: str) -> endpoints.Resolver:
    def resolve(host: str, port: int) -> list[endpoints.IPAddress]:
        return [ipaddress.ip_address(a) for a in answers]

    return resolve


def test_connect_addresses_are_the_checked_answers() -> None:
    assert endpoints.connect_addresses("crm.example.com", 443, resolver=resolver_of(*PUBLIC)) == (
        PUBLIC
    )
    assert endpoints.connect_addresses("8.8.8.8", 443, resolver=resolver_of("10.0.0.1")) == [
        "8.8.8.8"
    ]


@pytest.mark.parametrize("answers", [("10.0.0.1",), ("8.8.8.8", "127.0.0.1"), ()])
def test_one_non_public_answer_or_none_refuses_the_connection(answers: tuple[str, ...]) -> None:
    with pytest.raises(EndpointNotAllowed):
        endpoints.connect_addresses("crm.example.com", 443, resolver=resolver_of(*answers))


def test_allow_private_connects_anywhere_resolved() -> None:
    found = endpoints.connect_addresses(
        "crm.example.com", 443, allow_private=True, resolver=resolver_of("10.0.0.1")
    )
    assert found == ["10.0.0.1"]


def test_check_urls_names_the_field_that_reaches_a_private_address() -> None:
    urls = {"endpoint": "https://crm.example.com/hook", "rights_endpoint": "http://10.0.0.2/r"}
    with pytest.raises(EndpointNotAllowed) as caught:
        endpoints.check_urls(urls, allow_private=False, resolver=resolver_of("8.8.8.8"))
    assert caught.value.context["field"] == "rights_endpoint"
    endpoints.check_urls(urls, allow_private=True, resolver=resolver_of("8.8.8.8"))
    endpoints.check_urls({"endpoint": None}, allow_private=False)


def test_check_urls_resolves_names_with_the_default_port() -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[endpoints.IPAddress]:
        asked.append((host, port))
        return [ipaddress.ip_address("8.8.8.8")]

    endpoints.check_urls(
        {"a": "https://a.example.com/x", "b": "https://b.example.com:8080/y"},
        allow_private=False,
        resolver=resolve,
    )
    assert sorted(asked) == [("a.example.com", 443), ("b.example.com", 8080)]
    asked.clear()
    with pytest.raises(EndpointNotAllowed):
        endpoints.check_urls({"c": "http://c.example.com/"}, allow_private=True, resolver=resolve)
    assert asked == [("c.example.com", 80)]


def test_plaintext_http_reaches_only_a_private_receiver_when_allowed() -> None:
    """Personal data never crosses a public network in clear: `http://` is refused to a
    public address (and without CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1 at all), as `kafka://`."""
    plain = {"endpoint": "http://crm.example.com/hook"}
    for allow_private, address in ((False, "10.0.0.2"), (True, "8.8.8.8")):
        with pytest.raises(EndpointNotAllowed, match=r"plaintext \(http://\)") as caught:
            endpoints.check_urls(plain, allow_private=allow_private, resolver=resolver_of(address))
        assert caught.value.context["field"] == "endpoint"
    endpoints.check_urls(plain, allow_private=True, resolver=resolver_of("10.0.0.2"))
    endpoints.check_urls(
        {"endpoint": "https://crm.example.com/hook"},
        allow_private=False,
        resolver=resolver_of("8.8.8.8"),
    )


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "64:ff9b::808:808",
        "64:ff9b:1::808:808",
        "::808:808",
        "2001:0:4136:e378::1",
        "2002:808:808::1",
        "::ffff:8.8.8.8",
        "2001:db8::1",
        "224.0.0.1",
    ],
)
def test_plaintext_never_reaches_an_address_that_may_lead_outside(address: str) -> None:
    """A translator's prefix (NAT64 on a DNS64 network, Teredo, 6to4) or an IPv4-compatible
    address reaches the public internet though it is not `global` to the SSRF rule."""
    assert not endpoints.plaintext_allowed([address])
    assert not endpoints.plaintext_allowed(["10.0.0.2", address])
    with pytest.raises(EndpointNotAllowed):
        endpoints.check_urls(
            {"endpoint": "http://crm.example.com/hook"},
            allow_private=True,
            resolver=resolver_of(address),
        )
    for private in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:10.0.0.1",
    ):
        assert endpoints.plaintext_allowed([private]), private


def test_the_worker_sends_plaintext_to_no_public_address() -> None:
    """A name stored while it resolved to a private address, resolving to a public one too
    when the worker sends (the loopback answer first): the plaintext request is not made."""
    with receiver() as hook:
        url = hook.url.replace("127.0.0.1", "crm.example.com")
        sink = WebhookSink(2.0, allow_private=True, resolver=resolver_of("127.0.0.1", "8.8.8.8"))
        try:
            outcome = sink.send(url, b"{}", "sig")
            assert (outcome.ok, outcome.error) == (False, "endpoint_not_allowed")
        finally:
            sink.close()
        assert hook.attempts == 0
        private = WebhookSink(2.0, allow_private=True, resolver=resolver_of("127.0.0.1"))
        try:
            assert private.send(url, b"{}", "sig").ok
        finally:
            private.close()
        assert hook.attempts == 1


def test_a_name_that_does_not_resolve_is_accepted_when_stored() -> None:
    def fails(host: str, port: int) -> list[endpoints.IPAddress]:
        raise OSError("no such name")

    endpoints.check_stored("crm.example.com", 443, "endpoint", resolver=fails)
    with pytest.raises(OSError, match="no such name"):
        endpoints.connect_addresses("crm.example.com", 443, resolver=fails)


def test_a_plaintext_kafka_endpoint_reaches_only_a_private_cluster_when_allowed() -> None:
    """kafka:// sends in clear: refused unless private endpoints are allowed, and then only to
    non-public addresses (a name that does not resolve is accepted, as ever: the sink checks
    it again); kafkas:// (TLS) is checked as an https URL is."""

    def fails(host: str, port: int) -> list[endpoints.IPAddress]:
        raise OSError("no such name")

    plain = "kafka://kafka.example.com:9092/consented"
    for allow_private, resolver in (
        (False, resolver_of("10.0.0.1")),
        (False, fails),
        (True, resolver_of("8.8.8.8")),
        (True, resolver_of("10.0.0.1", "8.8.8.8")),
    ):
        with pytest.raises(EndpointNotAllowed) as caught:
            endpoints.check_urls(
                {"endpoint": plain}, allow_private=allow_private, resolver=resolver
            )
        assert caught.value.context["field"] == "endpoint"
    with pytest.raises(EndpointNotAllowed):
        endpoints.check_urls({"endpoint": "kafka://8.8.8.8:9092/t"}, allow_private=True)
    for resolver in (resolver_of("10.0.0.1", "fd00::1"), fails):
        endpoints.check_urls({"endpoint": plain}, allow_private=True, resolver=resolver)

    tls = "kafkas://kafka.example.com:9093/consented"
    endpoints.check_urls({"endpoint": tls}, allow_private=False, resolver=resolver_of("8.8.8.8"))
    with pytest.raises(EndpointNotAllowed):
        endpoints.check_urls(
            {"endpoint": tls}, allow_private=False, resolver=resolver_of("10.0.0.1")
        )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("kafka://k.example.com:9092/t.1", ("k.example.com", 9092, "t.1", False)),
        ("kafkas://k.example.com:9093/t_2", ("k.example.com", 9093, "t_2", True)),
        ("kafkas://[2001:db8::1]:9093/t-3", ("2001:db8::1", 9093, "t-3", True)),
        ("kafka://k.example.com/t", None),
        ("kafka://k.example.com:9092/", None),
        ("kafka://k.example.com:9092/a/b", None),
        ("kafka://k.example.com:9092/t?acks=0", None),
        ("kafka+ssl://k.example.com:9092/t", None),
        ("https://k.example.com:9092/t", None),
    ],
)
def test_the_one_kafka_endpoint_parser(
    value: str, parsed: tuple[str, int, str, bool] | None
) -> None:
    if parsed is None:
        with pytest.raises(ValueError, match="kafka"):
            endpoints.kafka_endpoint(value)
    else:
        assert endpoints.kafka_endpoint(value) == endpoints.KafkaEndpoint(*parsed)


def test_a_gateway_names_at_start_the_systems_stored_with_http(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A system stored with `http://` while it reached any host (or with private endpoints
    allowed then) gets nothing once they are not: the gateway says which at its start."""
    allowed = dataclasses.replace(settings, allow_private_endpoints=True)
    with TestClient(create_app(allowed)) as client:
        assert (
            put(client, "crm", CRM | {"endpoint": "http://10.0.0.8:8080/hook"}).status_code == 201
        )
        assert put(client, "warehouse", CRM).status_code == 201
    with caplog.at_level(logging.WARNING, logger="consentry.app"):
        with TestClient(create_app(allowed)):
            pass
        assert not [r for r in caplog.records if "http://" in r.getMessage()]
        with TestClient(create_app(settings)):
            pass
    (warned,) = [r.getMessage() for r in caplog.records if "http://" in r.getMessage()]
    assert "endpoint_not_allowed): crm;" in warned
    assert "warehouse" not in warned
