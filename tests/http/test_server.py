"""`consentry serve` as a real process on 127.0.0.1, spoken to over raw sockets: what the HTTP
parser refuses is answered as problem+json, and a body that never comes whole is a 408 within
the body timeout, and a head never sent whole a 408 within the head timeout (both set low
here), on one worker and on several."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.servers import free_port, serving

KEY = f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()
TIMEOUT_SECONDS = 1.0


@pytest.fixture(scope="module", params=[1, 2], ids=["one_worker", "two_workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    port = free_port()
    env = os.environ | {
        "CONSENTRY_DATA_DIR": str(tmp_path_factory.mktemp("serve") / "data"),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_ADMIN_KEY": ADMIN_KEY,
        "CONSENTRY_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "CONSENTRY_HEAD_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "CONSENTRY_DSR_POLL_SECONDS": "0",
    }
    with serving(port, env, workers=request.param, stop_seconds=30):
        yield port


def exchange(port: int, data: bytes, wait: float = 10.0) -> tuple[bytes, float, bool]:
    """Send `data`, read until the server closes (or `wait` passes): (answer, seconds, closed)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(wait)
        started = time.monotonic()
        sock.sendall(data)
        answer = b""
        closed = False
        try:
            while chunk := sock.recv(65536):
                answer += chunk
            closed = True
        except TimeoutError:
            pass
        return answer, time.monotonic() - started, closed


def problem_of(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    assert headers["content-type"] == "application/problem+json", answer[:300]
    problem = json.loads(body[: int(headers["content-length"])])
    assert problem["status"] == status
    return status, headers, problem


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/consents HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}",
        b"POST /v1/consents HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Note: a\x00b\r\n\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost t\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    ],
    ids=["bad_length", "two_lengths", "nul_in_header", "url_100kb", "header_no_colon", "tls"],
)
def test_what_the_parser_refuses_is_a_problem(server: int, request_bytes: bytes) -> None:
    answer, _, closed = exchange(server, request_bytes)
    status, headers, problem = problem_of(answer)
    assert status == 400
    assert problem["code"] == "malformed_http_request"
    assert headers["connection"] == "close"
    assert closed


@pytest.mark.parametrize("path", ["/v1/consents", "/v1/events"])
def test_a_body_shorter_than_declared_is_408_within_the_timeout(server: int, path: str) -> None:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n".encode()
        + KEY
        + b"Content-Length: 100\r\n\r\n"
        + b'{"subject"'
    )
    answer, seconds, closed = exchange(server, request)
    status, headers, problem = problem_of(answer)
    assert (status, problem["code"]) == (408, "body_timeout")
    assert TIMEOUT_SECONDS * 0.9 <= seconds < TIMEOUT_SECONDS + 3
    assert headers["connection"] == "close"
    assert closed


def test_a_head_not_sent_whole_is_408_within_the_head_timeout(server: int) -> None:
    """The setting reaches the protocol of `consentry serve`, on one worker and on several."""
    answer, seconds, closed = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    status, headers, problem = problem_of(answer)
    assert (status, problem["code"]) == (408, "head_timeout")
    assert TIMEOUT_SECONDS * 0.9 <= seconds < TIMEOUT_SECONDS + 3
    assert headers["connection"] == "close"
    assert closed


def test_routing_and_content_type_answers_are_problems(server: int) -> None:
    for request_bytes, status, code in (
        (b"GET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404, "not_found"),
        (
            b"DELETE /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            405,
            "method_not_allowed",
        ),
        (
            b"POST /v1/consents HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            + KEY
            + b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"5\r\nhello\r\n0\r\n\r\n",
            415,
            "unsupported_media_type",
        ),
    ):
        answer, _, _ = exchange(server, request_bytes)
        got, _, problem = problem_of(answer)
        assert (got, problem["code"]) == (status, code)


def test_the_h11_protocol_answers_the_same(tmp_path: Path) -> None:
    """Where httptools is not installed, uvicorn's h11 protocol is ours too (same answer)."""
    from consentry.app import create_app  # noqa: PLC0415
    from consentry.http.protocol import h11_protocol  # noqa: PLC0415
    from consentry.settings import Settings  # noqa: PLC0415

    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, master_key=MASTER_KEY)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, http=h11_protocol(15.0), lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        answer, _, closed = exchange(port, b"GET /healthz HTTP/1.1\r\nHost t\r\n\r\n")
        status, _, problem = problem_of(answer)
        assert (status, problem["code"]) == (400, "malformed_http_request")
        assert closed
    finally:
        server.should_exit = True
        thread.join(timeout=10)
