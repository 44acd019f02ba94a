"""Where pages may be served: over TLS, loopback excepted (API.md, Operations: People); and
their session cookies. The headers every page carries are http/headers.py's PAGE_HEADERS."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from consentry.http import headers
from consentry.http.clients import forwarded, loopback


def over_tls(request: Request, *, trust_proxy: bool) -> bool:
    """Whether the browser reached us over TLS (http/headers.py holds the rule)."""
    return headers.over_tls(request.scope, trust_proxy=trust_proxy)


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
