"""The browser SDK (web/sdk/consentry.js) served to any site: as a classic script at
/sdk/consentry.js and, wrapped, as an ES module at /sdk/consentry.mjs (API.md, Client
libraries: Browser)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SOURCE = files("consentry.web") / "sdk" / "consentry.js"
SCRIPT_URL = "/sdk/consentry.js"
MODULE_URL = "/sdk/consentry.mjs"
# The names the module exports besides its default (the SDK object itself).
EXPORTS = ("init", "purposes", "set", "withdraw", "state", "track", "flush", "on", "create")
# The source exports to `module.exports` when there is one: an ES module gives it one.
_MODULE_HEAD = "const module = { exports: {} };\n"
_MODULE_TAIL = (
    "\nexport default module.exports;\nexport const { "
    + ", ".join(EXPORTS)
    + " } = module.exports;\n"
)
# Sites load it from everywhere: any origin may, browsers keep it five minutes and then
# revalidate by ETag, so a new release reaches every page within minutes.
_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Encoding",
}
MEDIA_TYPE = "text/javascript; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Asset:
    """One form of the SDK: its bytes, gzipped once, and their ETag."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, text: str) -> Asset:
        body = text.encode("utf-8")
        # mtime=0: the same source gives the same bytes on every start.
        return cls(
            body,
            gzip.compress(body, compresslevel=9, mtime=0),
            '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        )


def script_source() -> str:
    """The SDK as written: a classic script (it sets `window.Consentry`)."""
    return SOURCE.read_text(encoding="utf-8")


def module_source() -> str:
    """The SDK as an ES module: the same source, its `module.exports` exported."""
    return _MODULE_HEAD + script_source() + _MODULE_TAIL


def _endpoint(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    async def sdk(request: Request) -> Response:
        headers = {**_HEADERS, "ETag": asset.etag}
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=MEDIA_TYPE, headers=headers)
        return Response(asset.body, media_type=MEDIA_TYPE, headers=headers)

    return sdk


def routes() -> list[Route]:
    """The two forms of the SDK, read from the package once (GET and HEAD)."""
    return [
        Route(SCRIPT_URL, _endpoint(Asset.of(script_source())), methods=["GET"]),
        Route(MODULE_URL, _endpoint(Asset.of(module_source())), methods=["GET"]),
    ]
