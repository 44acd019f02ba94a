"""The brand every page shows, from the settings: the name customers know
(CONSENTRY_BRAND_NAME), a logo (CONSENTRY_BRAND_LOGO, served at LOGO_URL) and a link to the
privacy policy (CONSENTRY_PRIVACY_POLICY_URL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consentry.http.headers import PAGE_HEADERS
from consentry.settings import Settings
from consentry.settings.rules import LOGO_TYPES

LOGO_URL = "/brand/logo"
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    logo: str | None  # the logo's URL, when there is one
    privacy_policy: str | None


def brand_of(settings: Settings) -> Brand:
    return Brand(
        settings.brand_name,
        LOGO_URL if settings.brand_logo else None,
        settings.privacy_policy_url or None,
    )


def logo_route(settings: Settings) -> Route | None:
    """The logo, read once (the settings checked its type and size), with the pages' headers
    (an SVG logo is shown as an image: no script of it runs); None without a logo."""
    if not settings.brand_logo:
        return None
    path = Path(settings.brand_logo)
    content = path.read_bytes()
    media_type = LOGO_TYPES[path.suffix.lower()]

    # An SVG opened on its own is a document of this origin: it may run nothing and reach
    # nothing (a sandbox with no scripts, no requests).
    headers = PAGE_HEADERS | {"Content-Security-Policy": LOGO_CSP}

    async def logo(request: Request) -> Response:
        return Response(content, media_type=media_type, headers=headers)

    return Route(LOGO_URL, logo, methods=["GET"])
