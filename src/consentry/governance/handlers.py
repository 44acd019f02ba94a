"""HTTP handlers for the data map (systems) and the record of processing activities."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import Depends, Path, Query, Request, Response
from pydantic import Field, StrictBool, StrictInt

from consentry.delivery.worker import resend
from consentry.errors import InvalidRequest
from consentry.governance import endpoints, ropa, summary
from consentry.governance.datamap import parse, to_definition
from consentry.governance.models import System
from consentry.http.auth import Ctx
from consentry.http.pagination import page
from consentry.http.schemas import Body, Instant
from consentry.storage import datamap as sql

SystemId = Annotated[str, Path(min_length=1, max_length=64)]
NoticeId = Annotated[str, Path(min_length=1, max_length=40)]


class SystemIn(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(max_length=16)
    endpoint: str = Field(min_length=1, max_length=2000)
    purposes: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=50)
    data_categories: list[Annotated[str, Field(max_length=200)]] = Field(max_length=200)
    region: str = Field(max_length=8)
    transfer_mechanism: str = Field(max_length=16)
    dpf_certified_until: str | None = Field(default=None, max_length=10)
    tia_ref: str | None = Field(default=None, min_length=1, max_length=200)
    ccpa_role: str | None = Field(default=None, max_length=20)
    vendor: str | None = Field(default=None, min_length=1, max_length=200)
    dpa_signed: StrictBool
    rights_endpoint: str | None = Field(default=None, min_length=1, max_length=2000)
    ack_hours: StrictInt | None = Field(default=None, ge=1, le=8760)
    # A GVL vendor id (VendorConsents holds ids 1-65535).
    tcf_vendor_id: StrictInt | None = Field(default=None, ge=1, le=65535)
    consent_events: StrictBool = False


def system_out(system: System) -> dict[str, Any]:
    return {"system_id": system.system_id, **to_definition(system)}


def endpoint_resolver() -> endpoints.Resolver:
    """How a system's endpoint names are resolved when it is stored (a dependency, so a test
    can give a slow one)."""
    return endpoints.resolve


Resolver = Annotated[endpoints.Resolver, Depends(endpoint_resolver)]


def put_system(
    system_id: SystemId, body: SystemIn, ctx: Ctx, response: Response, resolver: Resolver
) -> dict[str, Any]:
    """Create or replace a system; the signing secret is in the response that creates it only."""
    rt = ctx.runtime
    # Names resolve here, before the write transaction: up to RESOLVE_SECONDS each, which
    # would otherwise hold the write lock (on SQLite, every other write waits).
    endpoints.check_urls(
        {"endpoint": body.endpoint, "rights_endpoint": body.rights_endpoint},
        allow_private=rt.settings.allow_private_endpoints,
        resolver=resolver,
    )
    with rt.store.write() as conn:
        # The endpoints' addresses were checked above; parse checks their shape.
        system = parse(system_id, body.model_dump(), rt.purposes.all(conn))
        stored, secret = rt.datamap.put(conn, system, actor=ctx.actor)
    response.status_code = 201 if secret is not None else 200
    out = system_out(stored)
    if secret is not None:
        out["signing_secret"] = secret
    return out


def get_system(system_id: SystemId, ctx: Ctx) -> dict[str, Any]:
    """A system, with its undelivered and refused counts."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        system = rt.datamap.get(conn, system_id)
        pending, dead = rt.outbox.counts(conn, system_id)
        refused = sql.refusals(conn, system_id)
    return system_out(system) | {"delivery": {"pending": pending, "dead": dead, "refused": refused}}


def list_systems(ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        systems = ctx.runtime.datamap.all(conn)
    return page([system_out(s) for _, s in sorted(systems.items())], None)


def delete_system(system_id: SystemId, ctx: Ctx) -> Response:
    """Remove a system from the data map; what it had not received is not sent."""
    with ctx.runtime.store.write() as conn:
        ctx.runtime.datamap.delete(conn, system_id, actor=ctx.actor)
    return Response(status_code=204)


def get_ropa(
    ctx: Ctx, request: Request, format: Annotated[str | None, Query(max_length=8)] = None
) -> Response:
    """The record of processing activities (Art. 30): JSON, or CSV by Accept or ?format=csv."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        rows = ropa.activities(rt.purposes.all(conn), rt.schemas.all(conn), rt.datamap.all(conn))
    if format not in {None, "json", "csv"}:
        raise InvalidRequest("format is json or csv")
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(ropa.to_csv(rows), media_type="text/csv; charset=utf-8")
    return Response(msgspec.json.encode({"activities": rows}), media_type="application/json")


def resend_deliveries(system_id: SystemId, ctx: Ctx) -> dict[str, Any]:
    """Send a system's dead-lettered deliveries again, from the first attempt."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        rt.datamap.get(conn, system_id)
    count = resend(rt.store, system_id, actor=ctx.actor)
    rt.outbox.wake.set()
    return {"system_id": system_id, "resent": count}


def acknowledge_notice(notice_id: NoticeId, ctx: Ctx) -> Response:
    """Acknowledge a rights notice by hand (a system without a rights endpoint)."""
    with ctx.runtime.store.write() as conn:
        ctx.runtime.rights_notices.acknowledge(conn, notice_id, actor=ctx.actor)
    return Response(status_code=204)


def get_summary(
    ctx: Ctx,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    series: Annotated[Literal["day"] | None, Query()] = None,
) -> dict[str, Any]:
    """Consent coverage, compliance statuses and events counted, over a window."""
    rt = ctx.runtime
    return summary.summary(rt.store, rt.purposes, start, end, daily=series == "day")
