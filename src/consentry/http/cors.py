"""CORS for browser keys: a page may call the API only from an origin a browser key lists,
and may read only the answers to requests its key was honoured for (docs/decisions.md)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.auth.browser import HEADER as SUBJECT_HEADER
from consentry.errors import OriginNotAllowed
from consentry.http.auth import CORS_ORIGIN, KEY_HEADER
from consentry.http.errors import problem

METHODS = ("GET", "POST")
HEADERS = ("Content-Type", KEY_HEADER, SUBJECT_HEADER)
# Browsers cap it lower (Chromium: 2 hours); a key revoked meanwhile is refused by the request.
MAX_AGE = 600
_API = "/v1/"


class Cors:
    """Preflights (OPTIONS with Access-Control-Request-Method) to the API are answered for any
    origin some live browser key lists, with that origin alone, no credentials; the request
    itself then carries Access-Control-Allow-Origin only when its own key was honoured from
    that origin (http/auth.py). Other origins get no CORS header at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_API):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = await self._preflight(scope, headers, origin)
            await response(scope, receive, send)
            return

        async def answered(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if (scope.get("state") or {}).get(CORS_ORIGIN) == origin:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = "Retry-After"
            await send(message)

        await self.app(scope, receive, answered)

    async def _preflight(self, scope: Scope, headers: Headers, origin: str) -> Response:
        method = headers["access-control-request-method"].strip().upper()
        asked = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        allowed = {h.lower() for h in HEADERS}
        if method not in METHODS or not asked <= allowed or not await _listed(scope, origin):
            refused = problem(OriginNotAllowed("no browser key is honoured from this origin"))
            refused.headers["Vary"] = "Origin"
            return refused
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(METHODS),
                "Access-Control-Allow-Headers": ", ".join(HEADERS),
                "Access-Control-Max-Age": str(MAX_AGE),
                "Vary": "Origin",
            },
        )


async def _listed(scope: Scope, origin: str) -> bool:
    runtime = scope["app"].state.runtime
    held = runtime.authenticator.remembered_origins()
    if held is None:
        held = await run_in_threadpool(runtime.authenticator.origins, runtime.store)
    return origin in held
