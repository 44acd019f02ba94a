"""`GET /metrics`: who may scrape it (decisions.md), and the scrape itself."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from consentry import clock
from consentry.auth.models import Permission
from consentry.errors import Unauthenticated
from consentry.http.auth import Authorize, RuntimeDep
from consentry.operations import metrics as exposition
from consentry.settings import Settings
from consentry.storage.engine import Store

_KEY = Authorize(Permission.COMPLIANCE_READ)
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """The gateway's metrics in the Prometheus text format, all worker processes summed."""
    await _may_scrape(request, runtime.settings)
    body = await run_in_threadpool(_scrape, runtime.store, runtime.settings)
    return Response(body, media_type=exposition.CONTENT_TYPE)


async def _may_scrape(request: Request, settings: Settings) -> None:
    """The metrics token, an API key with compliance:read, or (when allowed) a loopback
    client that no proxy forwarded."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    token = settings.metrics_token
    if scheme.lower() == "bearer" and presented:
        if token and hmac.compare_digest(presented.encode(), token.encode()):
            return
        await _KEY(request)
        return
    if settings.metrics_loopback and _loopback(request) and not _forwarded(request):
        return
    raise Unauthenticated("send Authorization: Bearer <metrics token or api key>")


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _forwarded(request: Request) -> bool:
    return any(name in request.headers for name in _FORWARDED)


def _scrape(store: Store, settings: Settings) -> bytes:
    with store.read() as conn:
        return exposition.render(conn, clock.now(), settings.withdrawal_purge_hours)
