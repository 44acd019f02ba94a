"""Rendering a page: the templates (autoescaped), the headers every page carries, and the
problem a page shows when it cannot be served."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from consentry.http.headers import PAGE_HEADERS

_ENV = Environment(
    loader=PackageLoader("consentry.web", "templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC_URL = "/static"


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """`template` filled with `context` (and `static`, the assets' URL), as a page response
    with the page headers."""
    root = request.scope.get("root_path", "")
    body = _ENV.get_template(template).render(static=f"{root}{STATIC_URL}", **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
