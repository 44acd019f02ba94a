"""The pages' URL table: the assets, and each page behind the transport rule (TLS, loopback
excepted)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from consentry.errors import ConsentryError
from consentry.http.errors import status_of
from consentry.http.headers import PAGE_HEADERS
from consentry.settings import Settings
from consentry.web import browser_sdk
from consentry.web.brand import brand_of, logo_route
from consentry.web.pages import STATIC_URL, render
from consentry.web.security import transport_allowed

STATIC = Path(str(files("consentry.web") / "static"))
# A page: the request and its form (an urlencoded POST body; empty for a GET), run in a
# worker thread (pages read and write the store).
Form = Mapping[str, str]
Page = Callable[[Request, Form], Response]
# Form fields: how many, and how long each may be.
_MAX_FIELDS = 50
_MAX_FIELD = 10_000


def guarded(page: Page, settings: Settings) -> Callable[[Request], Any]:
    """`page` as an endpoint, refused with a problem page unless reached over TLS or from
    loopback; its form read first."""

    async def endpoint(request: Request) -> Response:
        if not transport_allowed(request, trust_proxy=settings.trust_proxy):
            return problem(
                request,
                settings,
                403,
                "A secure connection is needed",
                "These pages are served over HTTPS only. Open this address with https://.",
            )
        form: dict[str, str] = {}
        if request.method == "POST":
            parsed = _form(await request.body(), request.headers.get("content-type", ""))
            if parsed is None:
                return problem(
                    request, settings, 400, "The form could not be read", "Send the form again."
                )
            form = parsed
        try:
            return await run_in_threadpool(page, request, form)
        except ConsentryError as error:
            # A page answers with a page: what went wrong, in words, with its status.
            return problem(request, settings, status_of(type(error)), error.title, str(error))

    endpoint.__name__ = page.__name__
    endpoint.__doc__ = page.__doc__
    return endpoint


def see_other(url: str) -> Response:
    """A redirect after a form (303: the browser GETs `url`), with the page headers."""
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def client_address(request: Request) -> str:
    """The client's address (a proxy's X-Forwarded-For only with CONSENTRY_TRUST_PROXY: uvicorn
    is configured so)."""
    return request.client.host if request.client else ""


def problem(
    request: Request,
    settings: Settings,
    status: int,
    title: str,
    detail: str,
    back: str | None = None,
) -> Response:
    """A page saying what went wrong, and where to go back to."""
    return render(
        request,
        "problem.html",
        status=status,
        brand=brand_of(settings),
        title=title,
        detail=detail,
        back=back,
    )


def _form(body: bytes, content_type: str) -> dict[str, str] | None:
    """An urlencoded form's fields (the first value of each); None when it is not one."""
    if body and not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if len(value) > _MAX_FIELD or "\x00" in value:
            return None
        form.setdefault(name, value)
    return form


def register(app: FastAPI, settings: Settings, pages: dict[tuple[str, str], Page]) -> None:
    """Serve the assets, the browser SDK and `pages` ((method, path) -> handler), each page
    behind the transport rule. Pages are plain routes, not API operations: they stay out of
    the OpenAPI document and of the API's JSON body handling (they read urlencoded forms)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="web-static")
    app.router.routes.extend(browser_sdk.routes())
    logo = logo_route(settings)
    if logo is not None:
        app.router.routes.append(logo)
    for (method, path), page in pages.items():
        app.router.routes.append(Route(path, guarded(page, settings), methods=[method]))
