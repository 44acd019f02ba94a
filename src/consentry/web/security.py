"""What every page response carries, and where pages may be served: over TLS, loopback
excepted (API.md, Operations: People)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from consentry.http.clients import forwarded, loopback

# No inline script or style anywhere, no framing, nothing from another host.
CSP = "; ".join(
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
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Pages show personal data and hold forms' CSRF tokens: neither a browser nor a proxy keeps
    # a copy.
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def over_tls(request: Request, *, trust_proxy: bool) -> bool:
    """Whether the browser reached us over TLS: the connection's scheme, or the scheme the
    proxy in front says when `trust_proxy` (CONSENTRY_TRUST_PROXY)."""
    if request.url.scheme == "https":
        return True
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-proto", "")
        return forwarded.split(",")[0].strip().lower() == "https"
    return False


def transport_allowed(request: Request, *, trust_proxy: bool) -> bool:
    """Pages are served over TLS; a loopback client no proxy forwarded is the one exception."""
    if over_tls(request, trust_proxy=trust_proxy):
        return True
    return loopback(request) and not forwarded(request)


def set_session_cookie(
    response: Response, request: Request, name: str, token: str, *, path: str, trust_proxy: bool
) -> None:
    """A session cookie: HttpOnly, SameSite=Strict, Secure over TLS (a loopback page over
    plain HTTP could not keep a Secure cookie), for `path` only, ending with the browser."""
    response.set_cookie(
        name,
        token,
        path=path,
        httponly=True,
        samesite="strict",
        secure=over_tls(request, trust_proxy=trust_proxy),
    )


def clear_session_cookie(response: Response, name: str, *, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="strict")
