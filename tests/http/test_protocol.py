"""http/protocol.py: a real server on 127.0.0.1 (in this process, so its log records are
seen), spoken to over raw sockets, with each of our protocol classes (httptools and h11): a
request head not sent whole within the head timeout is answered 408 `head_timeout` and the
connection closed, counted from the connection's opening or from the end of its previous
response; a client that leaves in the middle of its body is no error in the log."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from consentry.app import create_app
from consentry.http.protocol import h11_protocol, httptools_protocol, protocol_class
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.http.test_server import KEY, problem_of
from tests.servers import free_port

HEAD_SECONDS = 1.0
PROTOCOLS: dict[str, Callable[[float], type]] = {
    "httptools": httptools_protocol,
    "h11": h11_protocol,
}


@pytest.fixture(scope="module", params=sorted(PROTOCOLS))
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("heads") / "data",
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
        body_timeout_seconds=5.0,
    )
    number = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=number,
        http=PROTOCOLS[request.param](HEAD_SECONDS),
        # uvicorn's records reach the root logger (and caplog) instead of its own handlers.
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert thread.is_alive(), "the server ended"
            time.sleep(0.05)
        yield number
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def read_until_closed(sock: socket.socket, wait: float = 6.0) -> bytes:
    sock.settimeout(wait)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, the connection left open."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def assert_head_timeout(answer: bytes, seconds: float) -> None:
    status, headers, problem = problem_of(answer)
    assert (status, problem["code"]) == (408, "head_timeout")
    assert headers["connection"] == "close"
    # Written below the app, with the headers every answer carries (http/headers.py).
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert HEAD_SECONDS * 0.9 <= seconds < HEAD_SECONDS + 2


def test_a_connection_that_sends_nothing_is_408(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        answer = read_until_closed(sock)
        assert_head_timeout(answer, time.monotonic() - started)


def test_a_partial_head_is_408(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        answer = read_until_closed(sock)
        assert_head_timeout(answer, time.monotonic() - started)


def test_a_head_sent_a_header_at_a_time_is_408(port: int) -> None:
    """Each byte comes well within the timeout; the head as a whole does not."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for n in range(20):
                time.sleep(HEAD_SECONDS / 4)
                sock.sendall(b"X-Slow-%d: y\r\n" % n)
        except OSError:
            pass  # closed by the server, as it should be
        answer = read_until_closed(sock)
        assert_head_timeout(answer, time.monotonic() - started)


def test_one_byte_after_a_keep_alive_response_is_408(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"G")
        answer = read_until_closed(sock)
        assert_head_timeout(answer, time.monotonic() - started)


def test_whole_heads_are_answered_on_a_kept_connection(port: int) -> None:
    """The timer restarts after each response and stops at each complete head: three requests
    over three timeouts on one connection, the last with a body sent after the head timeout."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(HEAD_SECONDS * 0.7)
        body = b'{"role": "dpo", "label": "slow"}'
        sock.sendall(
            b"POST /v1/api-keys HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + KEY
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        time.sleep(HEAD_SECONDS * 1.5)
        sock.sendall(body)
        assert read_response(sock).startswith(b"HTTP/1.1 201")


@pytest.mark.parametrize("path", ["/v1/events", "/v1/consents"])
def test_a_client_leaving_mid_body_is_no_error(
    port: int, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n".encode()
            + KEY
            + b"Content-Length: 100\r\n\r\n"
            + b'{"events":'
        )
        time.sleep(0.3)
    time.sleep(0.7)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]


def test_the_protocol_is_uvicorns_auto_choice_with_the_head_timeout() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    chosen = protocol_class(2.5)
    assert issubclass(chosen, HttpToolsProtocol)
    assert h11_protocol(2.5).head_timeout == 2.5
