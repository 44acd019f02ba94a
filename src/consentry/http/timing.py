"""ASGI middleware: every HTTP request's latency, by route template (never the raw path,
which may hold an identifier), into the request-duration histogram."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.operations import counters

# The route label of a request that matched no route.
UNMATCHED = "unmatched"
# Methods named in the label as they are; any other is counted as OTHER (a label per made-up
# method would grow without bound).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTimer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # The router writes the matched route into the scope it was handed.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            counters.observe_request(method, route, status, time.perf_counter() - started)
