"""The pages' URL table: the assets, and each page behind the transport rule (TLS, loopback
excepted)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from consentry.settings import Settings
from consentry.web.pages import STATIC_URL, render
from consentry.web.security import HEADERS, transport_allowed

STATIC = Path(str(files("consentry.web") / "static"))
Page = Callable[[Request], Awaitable[Response]]


class _Static(StaticFiles):
    """The pages' assets, with the pages' headers (no framing, no sniffing)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        for name in ("X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy"):
            response.headers[name] = HEADERS[name]
        return response


def guarded(page: Page, settings: Settings) -> Page:
    """`page`, refused with a problem page unless reached over TLS or from loopback."""

    async def endpoint(request: Request) -> Response:
        if not transport_allowed(request, trust_proxy=settings.trust_proxy):
            return render(
                request,
                "problem.html",
                status=403,
                brand=settings_brand(settings),
                title="A secure connection is needed",
                detail="These pages are served over HTTPS only. Open this address with https://.",
                back=None,
            )
        return await page(request)

    endpoint.__name__ = page.__name__
    endpoint.__doc__ = page.__doc__
    return endpoint


def settings_brand(settings: Settings) -> str:
    """The product name the pages show."""
    return "Consentry"


def register(app: FastAPI, settings: Settings, pages: dict[tuple[str, str], Page]) -> None:
    """Serve the assets and `pages` ((method, path) -> handler), each behind the transport
    rule; pages are not API operations, so they stay out of the OpenAPI document."""
    app.mount(STATIC_URL, _Static(directory=STATIC), name="web-static")
    for (method, path), page in pages.items():
        app.add_api_route(path, guarded(page, settings), methods=[method], include_in_schema=False)
