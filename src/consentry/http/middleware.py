"""ASGI middleware: the body-size limit and the JSON content-type rule, before any handler."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from consentry.http.errors import problem

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimits:
    """Refuse bodies over `max_bytes` (413), declared or streamed, non-JSON API bodies (415)
    and URLs with a NUL character (422)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if (
            scope["path"].startswith("/v1/")
            and declared not in (None, b"0")
            and not (content_type == b"application/json" or content_type.endswith(b"+json"))
        ):
            error = UnsupportedMediaType("API bodies are JSON: send Content-Type: application/json")
            await problem(error)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes")
