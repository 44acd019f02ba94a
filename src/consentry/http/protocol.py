"""uvicorn's HTTP protocols with their own 400 (a request its parser refuses: a bad header, a
malformed length, a request line it cannot read) answered as problem+json like every error,
and a deadline on each request head: a connection that does not finish one within the head
timeout (from its opening, or from the end of the previous response) is answered 408."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from consentry.errors import ConsentryError, HeadTimeout, MalformedHTTP
from consentry.http.errors import PROBLEM_JSON, problem_bytes, status_of
from consentry.http.headers import raw_defaults

_DETAIL = "the HTTP request could not be parsed (its request line, a header or its framing)"
_REASONS = {400: b"Bad Request", 408: b"Request Timeout"}


def _response(default_headers: list[tuple[bytes, bytes]], error: ConsentryError) -> bytes:
    status = status_of(type(error))
    body = problem_bytes(error)
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [name + b": " + value + b"\r\n" for name, value in raw_defaults()]
    lines += [
        b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n",
        b"\r\n",
        body,
    ]
    return b"".join(lines)


def _refuse(protocol: Any, error: ConsentryError) -> None:
    # Written raw, as the httptools protocol does: the parser's state may be broken by now.
    protocol.transport.write(_response(protocol.server_state.default_headers, error))
    protocol.transport.close()


class _HeadDeadline:
    """The head timer of one connection: armed when it opens and after each response, off
    once a request's head is complete. uvicorn's own keep-alive timer stops at the first byte
    of the next request, so a head sent a byte at a time was never timed out."""

    def __init__(self, protocol: Any, seconds: float) -> None:
        self._protocol = protocol
        self._seconds = seconds
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.disarm()
        if self._protocol.transport.is_closing():
            return
        self._timer = self._protocol.loop.call_later(self._seconds, self._expired)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        protocol = self._protocol
        cycle = protocol.cycle
        if protocol.transport.is_closing() or (cycle is not None and not cycle.response_complete):
            # A request is being answered: its body has its own deadline (middleware.py).
            return
        detail = f"the request head did not arrive within {self._seconds:g} seconds"
        _refuse(protocol, HeadTimeout(detail))


class ProblemH11Protocol(H11Protocol):
    head_timeout = 15.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._head = _HeadDeadline(self, self.head_timeout)
        self._head.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head.disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:
            self._head.disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head.arm()

    def send_400_response(self, msg: str) -> None:
        _refuse(self, MalformedHTTP(_DETAIL))


def protocol_class(head_timeout: float) -> type[asyncio.Protocol]:
    """The protocol uvicorn's `auto` would choose (httptools when installed), answering its
    parser's 400s as problem+json and a head not complete within `head_timeout` seconds as
    408 `head_timeout`."""
    if importlib.util.find_spec("httptools") is None:
        return h11_protocol(head_timeout)
    return httptools_protocol(head_timeout)


def h11_protocol(head_timeout: float) -> type[ProblemH11Protocol]:
    return type("ProblemH11Protocol", (ProblemH11Protocol,), {"head_timeout": head_timeout})


def httptools_protocol(head_timeout: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    class ProblemHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._head = _HeadDeadline(self, head_timeout)
            self._head.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._head.disarm()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._head.disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._head.arm()

        def send_400_response(self, msg: str) -> None:
            _refuse(self, MalformedHTTP(_DETAIL))

    return ProblemHttpToolsProtocol
