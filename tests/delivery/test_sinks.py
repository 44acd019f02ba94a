"""The webhook sink on loopback: it resolves an endpoint's name itself, checks the addresses,
and connects to one it checked, with the name kept in the URL (the Host header, the pool's key,
and TLS's SNI and certificate check); a name reaching a private address is refused at send
time unless private endpoints are allowed; a URL the client cannot parse is a failed send, not
an exception."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from consentry.delivery.sinks import WebhookSink
from consentry.governance import endpoints
from tests.delivery.receiver import receiver

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def to_loopback(asked: list[str]) -> endpoints.Resolver:
    """A resolver (in place of DNS, which these names lack here) answering loopback."""

    def resolve(host: str, port: int) -> list[endpoints.IPAddress]:
        asked.append(host)
        return [LOOPBACK]

    return resolve


def test_the_connection_goes_to_the_checked_address_under_the_name() -> None:
    asked: list[str] = []
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        sink = WebhookSink(2.0, allow_private=True, resolver=to_loopback(asked))
        try:
            outcome = sink.send(f"http://hooks.example.com:{port}/hook", b"{}", "sig")
        finally:
            sink.close()
        assert outcome.ok, outcome.error
        assert asked == ["hooks.example.com"]
        [(_, headers)] = hook.received
        assert headers["Host"] == f"hooks.example.com:{port}"


def test_a_name_reaching_a_private_address_is_refused_at_send_time() -> None:
    asked: list[str] = []
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        sink = WebhookSink(2.0, resolver=to_loopback(asked))
        try:
            outcome = sink.send(f"http://hooks.example.com:{port}/hook", b"{}", "sig")
        finally:
            sink.close()
        assert (outcome.ok, outcome.error) == (False, "endpoint_not_allowed")
        assert asked == ["hooks.example.com"]
        assert hook.attempts == 0


@contextmanager
def kept_alive() -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """An HTTP/1.1 receiver that keeps connections open: (port, [(client port, Host)])."""
    seen: list[tuple[int, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.client_address[1], self.headers["Host"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_two_names_on_one_address_never_share_a_connection() -> None:
    """The pool keys connections by name: a second system whose name resolves to the same
    address gets its own connection (and, over TLS, its own certificate check)."""
    with kept_alive() as (port, seen):
        sink = WebhookSink(2.0, allow_private=True, resolver=to_loopback([]))
        try:
            for name in ("a.example.com", "b.example.com", "a.example.com", "b.example.com"):
                assert sink.send(f"http://{name}:{port}/hook", b"{}", "sig").ok
        finally:
            sink.close()
    by_connection: dict[int, set[str]] = {}
    for client_port, host in seen:
        by_connection.setdefault(client_port, set()).add(host)
    assert len(seen) == 4
    assert sorted(map(sorted, by_connection.values())) == [
        [f"a.example.com:{port}"],
        [f"b.example.com:{port}"],
    ]


def test_a_url_the_client_cannot_parse_is_a_failed_send() -> None:
    """Stored before such URLs were refused: the send fails, the pass goes on."""
    sink = WebhookSink(2.0, allow_private=True)
    try:
        for url in ("http://\uff05\uff131\uff127.0.0.1:8080/", "http://[::1/"):
            outcome = sink.send(url, b"{}", "sig")
            assert (outcome.ok, outcome.error) == (False, "invalid endpoint URL")
    finally:
        sink.close()
