"""ASGI middleware: the body-size limit, the body-read deadline and the JSON content-type rule,
before any handler."""

from __future__ import annotations

import asyncio
import email.message
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.auth.browser import BEACON_KEY, BEACON_PATH
from consentry.errors import BodyTimeout, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from consentry.http.errors import problem

_BODY_METHODS = {"POST", "PUT", "PATCH"}
# The API bodies that are YAML, not JSON: a fideslang document (governance/fideslang.py).
YAML_PATHS = frozenset({"/v1/fideslang"})


class BodyLimits:
    """Refuse bodies over `max_bytes` (413), declared or streamed; bodies not received whole
    within `read_timeout` seconds (408); non-JSON API bodies, or with more than one
    Content-Type (415), declared or chunked; and URLs with a NUL character (422)."""

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            # No resource or parameter of ours contains NUL; PostgreSQL text cannot hold one.
            await problem(InvalidRequest("the URL contains a NUL character"))(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await problem(self._too_large())(scope, receive, send)
            return
        types = [value for name, value in scope["headers"] if name == b"content-type"]
        not_json = scope["path"].startswith("/v1/") and not (
            len(types) == 1
            and (_is_json(types[0]) or _beacon(scope, types[0]) or _yaml(scope, types[0]))
        )
        if not_json and declared not in (None, b"0"):
            await problem(_not_json())(scope, receive, send)
            return
        received = 0
        complete = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal received, complete, deadline
            if complete:
                # The body is in; later calls wait for a disconnect, without a deadline.
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.read_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(
                    f"the body did not arrive within {self.read_timeout:g} seconds"
                ) from None
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            complete = not message.get("more_body", False)
            # A chunked body declares no length: its type is checked when its bytes come.
            if chunk and not_json:
                raise _not_json()
            received += len(chunk)
            if received > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes")


def _is_json(content_type: bytes) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON (fastapi/routing.py parses it
    this way), so the raw-body route and the model routes give one verdict: application/json
    or application/*+json, parameters and case aside."""
    if content_type == b"application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _beacon(scope: Scope, content_type: bytes) -> bool:
    """An events batch sent by navigator.sendBeacon: text/plain (the only JSON-carrying type a
    beacon sends without a preflight), its browser key in the query string (http/auth.py)."""
    if scope["path"] != BEACON_PATH:
        return False
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return message.get_content_type() == "text/plain" and BEACON_KEY in query


def _yaml(scope: Scope, content_type: bytes) -> bool:
    return scope["path"] in YAML_PATHS and is_yaml(content_type)


def is_yaml(content_type: bytes) -> bool:
    """A YAML body (a fideslang document): application/yaml (RFC 9512), or the older
    application/x-yaml and text/yaml, parameters and case aside."""
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    return message.get_content_type() in {"application/yaml", "application/x-yaml", "text/yaml"}


def _not_json() -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "API bodies are JSON (application/yaml for a fideslang import): send Content-Type: "
        "application/json"
    )
