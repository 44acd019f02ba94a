"""`GET /metrics`: who may scrape it (decisions.md), and the scrape itself."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response

from consentry import clock
from consentry.auth.models import Permission
from consentry.errors import Unauthenticated
from consentry.http.auth import KEY_HEADER, Authorize, Ctx, RuntimeDep, get_runtime
from consentry.http.clients import forwarded, loopback
from consentry.http.schemas import Instant
from consentry.operations import metrics as exposition
from consentry.operations import summary
from consentry.settings import Settings
from consentry.storage.engine import Store


def metrics(runtime: RuntimeDep) -> Response:
    """The gateway's metrics in the Prometheus text format, all worker processes summed."""
    body = _scrape(runtime.store, runtime.settings)
    return Response(body, media_type=exposition.CONTENT_TYPE)


def get_summary(
    ctx: Ctx,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    series: Annotated[Literal["day"] | None, Query()] = None,
) -> dict[str, Any]:
    """What the DPO must show, over a window: coverage, statuses, events, requests, keys,
    incidents, re-consent due."""
    rt = ctx.runtime
    return summary.summary(
        rt.store,
        rt.purposes,
        start,
        end,
        daily=series == "day",
        rotation_days=rt.settings.key_rotation_days,
    )


class MetricsAccess:
    """The route's dependency: the metrics token, an API key holding `permission`, or (when
    allowed) a loopback client that no proxy forwarded."""

    def __init__(self, permission: Permission) -> None:
        self._key = Authorize(permission)

    async def __call__(self, request: Request) -> None:
        settings = get_runtime(request).settings
        if KEY_HEADER in request.headers:
            # A browser key is refused as on every route it may not reach (403 forbidden).
            await self._key(request)
            return
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        token = settings.metrics_token
        if scheme.lower() == "bearer" and presented:
            if token and hmac.compare_digest(presented.encode(), token.encode()):
                return
            await self._key(request)
            return
        if settings.metrics_loopback and loopback(request) and not forwarded(request):
            return
        raise Unauthenticated("send Authorization: Bearer <metrics token or api key>")


def _scrape(store: Store, settings: Settings) -> bytes:
    with store.read() as conn:
        return exposition.render(conn, clock.now(), settings.withdrawal_purge_hours)
