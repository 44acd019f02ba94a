"""The benchmark's load client against a real server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from consentry.bench import load


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[str, str, bytes]]]]:
    """Answers 200 on /ok and 503 elsewhere, on kept-alive connections; records what came."""
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/close":
                self.close_connection = True
                return
            seen.append((self.path, self.headers["Authorization"], body))
            answer = b'{"ok": true}' * 2000 if self.path == "/ok" else b"{}"
            self.send_response(200 if self.path == "/ok" else 503)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_clients_post_every_body_with_new_ids_and_time_each_answer(
    receiver: tuple[int, list[tuple[str, str, bytes]]],
) -> None:
    port, seen = receiver
    bodies = (b'{"events": [{"event_id": "x-1"}, {"event_id": "x-2"}]}', b'{"event_id": "x-3"}')
    outcome = load.run(load.Load(port, "/ok", "k-1", bodies, 0.5, 3, b'"x-', warmup=0.3))
    assert outcome.failure is None
    # What was sent in the first 0.3 s is not counted.
    assert 3 < outcome.requests == len(outcome.latencies) < len(seen)
    assert 0.5 <= outcome.seconds < 5
    assert outcome.cpu_seconds > 0
    assert all(ms > 0 for ms in outcome.latencies)
    assert {(path, auth) for path, auth, _ in seen} == {("/ok", "Bearer k-1")}
    # Each request's ids are new: the stamp is followed by a serial of the run.
    ids = [body.split(b'"x-', 1)[1].split(b"-", 1)[0] for _, _, body in seen]
    assert len(set(ids)) == len(ids)
    assert all(body.count(b'"x-') == body.count(b'"event_id"') for _, _, body in seen)
    assert {
        body.replace(b"x-" + i + b"-", b"x-") for (_, _, body), i in zip(seen, ids, strict=True)
    } == set(bodies)


def test_an_answer_other_than_200_is_reported(
    receiver: tuple[int, list[tuple[str, str, bytes]]],
) -> None:
    port, _ = receiver
    outcome = load.run(load.Load(port, "/missing", "k", (b"{}",), 0.3, 2))
    assert outcome.failure == "HTTP 503 from /missing"
    # Each client stops at the first failure it or another client meets.
    assert 1 <= outcome.requests <= 2


def test_a_connection_refused_or_closed_is_a_failure_not_a_hang(
    receiver: tuple[int, list[tuple[str, str, bytes]]],
) -> None:
    port, _ = receiver
    closed = load.run(load.Load(port, "/close", "k", (b"{}",), 0.3, 2))
    assert closed.failure == "RuntimeError: the server closed the connection"
    assert closed.requests == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    refused = load.run(load.Load(free, "/ok", "k", (b"{}",), 0.3, 2))
    assert refused.failure is not None
    assert refused.failure.startswith("ConnectionRefusedError")
    assert refused.requests == 0
