"""http/middleware.py on a tiny app of its own: the body-size limit (declared and streamed), the
body-read deadline, the JSON content-type rule and the NUL-in-URL refusal, before any handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from consentry.http import errors
from consentry.http.middleware import BodyLimits, _is_json

LIMIT = 64
JSON = {"content-type": "application/json"}


def tiny_app() -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    errors.install(app)
    reached: list[str] = []

    @app.post("/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        reached.append("echo")
        return {"length": len(body)}

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.get("/v1/items")
    async def items(q: str = "") -> dict[str, str]:
        reached.append("items")
        return {"q": q}

    app.add_middleware(BodyLimits, max_bytes=LIMIT, read_timeout=0.3)
    return app, reached


@pytest.fixture
def app() -> tuple[FastAPI, list[str]]:
    return tiny_app()


@pytest.fixture
def client(app: tuple[FastAPI, list[str]]) -> Iterator[TestClient]:
    with TestClient(app[0]) as test_client:
        yield test_client


def code_of(resp: object, status: int) -> str:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    return str(resp.json()["code"])  # type: ignore[attr-defined]


def test_a_body_within_the_limit_reaches_the_handler(client: TestClient) -> None:
    resp = client.post("/v1/echo", content=b"x" * LIMIT, headers=JSON)
    assert resp.json() == {"length": LIMIT}


def test_a_declared_length_over_the_limit_is_413_unread(
    client: TestClient, app: tuple[FastAPI, list[str]]
) -> None:
    resp = client.post("/v1/echo", content=b"x" * (LIMIT + 1), headers=JSON)
    assert code_of(resp, 413) == "payload_too_large"
    assert app[1] == []


def test_a_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 20

    resp = client.post("/v1/echo", content=chunks(), headers=JSON)
    assert code_of(resp, 413) == "payload_too_large"


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3"])
def test_a_content_length_that_is_not_a_number_is_413(length: bytes) -> None:
    app, reached = tiny_app()
    sent: list[Message] = []
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/echo",
        "query_string": b"",
        "headers": [(b"content-length", length), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = BodyLimits(app, max_bytes=LIMIT)
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] == 413
    assert reached == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"],
)
def test_an_api_body_that_is_not_json_is_415(client: TestClient, content_type: str) -> None:
    resp = client.post("/v1/echo", content=b"{}", headers={"content-type": content_type})
    assert code_of(resp, 415) == "unsupported_media_type"


def test_a_body_without_a_type_or_with_two_types_is_415(client: TestClient) -> None:
    assert code_of(client.post("/v1/echo", content=b"{}"), 415) == "unsupported_media_type"
    two = [("content-type", "application/json"), ("content-type", "application/json")]
    resp = client.post("/v1/echo", content=b"{}", headers=two)
    assert code_of(resp, 415) == "unsupported_media_type"


def test_a_chunked_body_is_type_checked_when_its_bytes_come(client: TestClient) -> None:
    resp = client.post(
        "/v1/echo", content=iter([b"{", b"}"]), headers={"content-type": "text/plain"}
    )
    assert code_of(resp, 415) == "unsupported_media_type"
    assert client.post("/v1/echo", content=iter([b"{", b"}"]), headers=JSON).status_code == 200


def test_an_empty_api_body_needs_no_type_and_other_paths_take_any(client: TestClient) -> None:
    assert client.post("/v1/echo", content=b"").json() == {"length": 0}
    resp = client.post("/form", content=b"a=1", headers={"content-type": "text/plain"})
    assert resp.json() == {"length": 3}


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (b"application/json", True),
        (b"application/json; charset=utf-8", True),
        (b"Application/JSON", True),
        (b"application/problem+json", True),
        (b"application/vnd.example+json; v=1", True),
        (b"text/json", False),
        (b"application/jsonp", False),
        (b"application/notjson", False),
        (b"application/xml", False),
        (b"", False),
    ],
)
def test_is_json(value: bytes, verdict: bool) -> None:
    assert _is_json(value) is verdict


def test_a_nul_in_the_url_is_422_before_any_handler(
    client: TestClient, app: tuple[FastAPI, list[str]]
) -> None:
    assert code_of(client.get("/v1/items?q=a%00b"), 422) == "invalid_request"
    assert code_of(client.get("/v1/items%00"), 422) == "invalid_request"
    assert app[1] == []
    assert client.get("/v1/items?q=ab").json() == {"q": "ab"}


def test_a_body_not_received_whole_in_time_is_408() -> None:
    app, reached = tiny_app()
    sent: list[Message] = []
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/echo",
        "query_string": b"",
        "headers": [(b"content-length", b"10"), (b"content-type", b"application/json")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }

    async def slow() -> AsyncIterator[Message]:
        yield {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(5)
        yield {"type": "http.request", "body": b"}", "more_body": False}

    parts = slow()

    async def receive() -> Message:
        return await parts.__anext__()

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = BodyLimits(app, max_bytes=LIMIT, read_timeout=0.3)

    async def run() -> None:
        await asyncio.wait_for(middleware(scope, receive, send), timeout=3)

    asyncio.run(run())
    start = sent[0]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert reached == []
