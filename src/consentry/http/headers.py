"""The security headers of every response, in one place: what the pages carry, what every other
answer (JSON, problem+json, assets, the SDK) carries unless its route says otherwise, the API
docs' policy, and HSTS over TLS only (docs/operations.md, Security headers)."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The pages: no inline script or style anywhere, no framing, nothing from another host.
PAGE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages show personal data and hold forms' CSRF tokens: neither a browser nor a proxy keeps
    # a copy.
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Any other answer opened as a document (a JSON body in a tab, an export) runs nothing, loads
# nothing and is framed by nobody.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Every answer that does not set its own: API answers carry consent states, tokens, personal
# data and secrets (a new API key is shown once), so no cache keeps them.
DEFAULTS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_CSP,
    "Cache-Control": "no-store",
}
# Files of the pages and of /docs: nothing personal; a browser may keep them but asks again
# (by ETag) before each use, so a new release is seen at once.
ASSET_CACHE = "no-cache"
# A year, the usual minimum for browsers' preload lists; no includeSubDomains: the gateway does
# not speak for the other hosts of its domain.
HSTS = "max-age=31536000"

_Raw = list[tuple[bytes, bytes]]
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def over_tls(scope: Scope, *, trust_proxy: bool) -> bool:
    """Whether the client reached us over TLS: the connection's scheme (`consentry serve
    --ssl-certfile`), or the scheme the proxy in front says when `trust_proxy`
    (CONSENTRY_TRUST_PROXY)."""
    if scope.get("scheme") == "https":
        return True
    if trust_proxy:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                said: bytes = value
                return said.split(b",")[0].strip().lower() == b"https"
    return False


def docs_csp(html: str, *, inline_styles: bool = False) -> str:
    """The policy of an API docs page (Swagger UI, ReDoc): its own assets, its inline scripts
    by hash (FastAPI's page starts Swagger UI from one), the OpenAPI document fetched from this
    host; `inline_styles` for a viewer that writes `<style>` elements (ReDoc does)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self'" + (" 'unsafe-inline'" if inline_styles else ""),
            # ReDoc's sidebar shows Redocly's logo from cdn.redoc.ly whatever its options: no
            # image from another host is loaded (ReDoc hides it then).
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            # ReDoc's search runs in a worker made from a blob.
            "worker-src 'self' blob:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def _raw(headers: dict[str, str]) -> _Raw:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


class SecurityHeaders:
    """ASGI middleware: every HTTP answer gets DEFAULTS (assets ASSET_CACHE in place of
    no-store), and HSTS when the request came over TLS; a header the answer sets itself (the
    pages' policy, the SDK's caching, /docs' policy) is kept. Pure ASGI, a few list operations
    an answer, so the hot paths pay next to nothing."""

    def __init__(self, app: ASGIApp, *, trust_proxy: bool, assets: tuple[str, ...] = ()) -> None:
        self.app = app
        self.trust_proxy = trust_proxy
        self.assets = assets
        self._plain = _raw(DEFAULTS)
        self._asset = _raw(DEFAULTS | {"Cache-Control": ASSET_CACHE})
        self._hsts = (b"strict-transport-security", HSTS.encode())
        self._names = frozenset(name for name, _ in [*self._plain, self._hsts])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._asset if scope["path"].startswith(self.assets) else self._plain
        if over_tls(scope, trust_proxy=self.trust_proxy):
            extra = [*extra, self._hsts]

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: _Raw = list(message.get("headers", ()))
                present = self._names.intersection([name.lower() for name, _ in headers])
                if present:
                    headers.extend(h for h in extra if h[0] not in present)
                else:
                    headers.extend(extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, secured)


def raw_defaults() -> _Raw:
    """DEFAULTS as (name, value) bytes, for answers written below the ASGI app (the HTTP
    protocol's own 400 and 408, http/protocol.py)."""
    return _raw(DEFAULTS)
