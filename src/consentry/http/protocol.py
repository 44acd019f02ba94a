"""uvicorn's HTTP protocols with their own 400 (a request its parser refuses: a bad header, a
malformed length, a request line it cannot read) answered as problem+json like every error."""

from __future__ import annotations

import asyncio
import importlib.util

from uvicorn.protocols.http.h11_impl import H11Protocol

from consentry.errors import MalformedHTTP
from consentry.http.errors import PROBLEM_JSON, problem_bytes

_DETAIL = "the HTTP request could not be parsed (its request line, a header or its framing)"


def _response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = problem_bytes(MalformedHTTP(_DETAIL))
    lines = [b"HTTP/1.1 400 Bad Request\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [
        b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n",
        b"\r\n",
        body,
    ]
    return b"".join(lines)


class ProblemH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        # Written raw, as the httptools protocol does: h11's state may be broken by now.
        self.transport.write(_response(self.server_state.default_headers))
        self.transport.close()


def protocol_class() -> type[asyncio.Protocol]:
    """The protocol uvicorn's `auto` would choose (httptools when installed), answering its
    parser's 400s as problem+json."""
    if importlib.util.find_spec("httptools") is None:
        return ProblemH11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    class ProblemHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            self.transport.write(_response(self.server_state.default_headers))
            self.transport.close()

    return ProblemHttpToolsProtocol
