"""HTTP handlers for event schemas and detokenisation."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import Path, Request, Response
from pydantic import Field, StrictBool
from starlette.concurrency import run_in_threadpool

from consentry.consent.handlers import GpcHeader
from consentry.consent.signals import gpc_header
from consentry.errors import UnknownEventType
from consentry.http.auth import Ctx
from consentry.http.pagination import page
from consentry.http.schemas import Body
from consentry.ingest import classify
from consentry.ingest.detokenize import MAX_TOKENS, detokenize
from consentry.ingest.models import FieldType, Treatment
from consentry.ingest.schemas import to_definition

EventType = Annotated[str, Path(min_length=1, max_length=64)]


class FieldIn(Body):
    type: FieldType
    category: str = Field(max_length=200)
    treatment: Treatment
    purposes: list[str] | None = Field(default=None, max_length=50)
    required: StrictBool = False


class SchemaIn(Body):
    purposes: list[str] = Field(min_length=1, max_length=50)
    fields: dict[str, FieldIn] = Field(max_length=200)


class ClassifyIn(Body):
    # Each sample's names and values are checked by classify(), which never repeats a name
    # (a model's error would name the key).
    samples: list[dict[str, Any]] = Field(min_length=1, max_length=classify.MAX_SAMPLES)


class DetokenizeIn(Body):
    tokens: list[str] = Field(min_length=1, max_length=MAX_TOKENS)
    reason: str = Field(min_length=1, max_length=500)


def put_schema(
    event_type: EventType, body: SchemaIn, ctx: Ctx, response: Response
) -> dict[str, Any]:
    """Create or replace the schema of an event type (each change is a new version)."""
    rt = ctx.runtime
    with rt.store.write() as conn:
        schema, created = rt.schemas.put(
            conn, event_type, body.model_dump(), rt.purposes.all(conn), actor=ctx.actor
        )
    response.status_code = 201 if created else 200
    return {"event_type": event_type, "version": schema.version, **to_definition(schema)}


def get_schema(event_type: EventType, ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        compiled = ctx.runtime.schemas.all(conn).get(event_type)
    if compiled is None:
        raise UnknownEventType(f"no schema for {event_type!r}", event_type=event_type)
    schema = compiled.schema
    return {"event_type": event_type, "version": schema.version, **to_definition(schema)}


def classify_fields(event_type: EventType, body: ClassifyIn, ctx: Ctx) -> dict[str, Any]:
    """Suggest each field's data category, treatment and confidence from its name and sample
    values (the redaction recognizers run over them); nothing is stored, and no sample value is
    kept or logged. A field of the event type's schema, if it has one, shows its declaration."""
    with ctx.runtime.store.read() as conn:
        compiled = ctx.runtime.schemas.all(conn).get(event_type)
    declared = compiled.fields if compiled is not None else None
    suggestions = classify.classify(body.samples, declared)
    return {
        "event_type": event_type,
        "samples": len(body.samples),
        "fields": {s.name: classify.to_json(s) for s in suggestions},
    }


def list_schemas(ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        schemas = ctx.runtime.schemas.all(conn)
    items = [
        {"event_type": key, "version": c.schema.version, **to_definition(c.schema)}
        for key, c in sorted(schemas.items())
    ]
    return page(items, None)


def detokenize_values(body: DetokenizeIn, ctx: Ctx) -> dict[str, Any]:
    """Tokens back to values, for admin and dpo only; every value read is audited."""
    rt = ctx.runtime
    with rt.store.write() as conn:
        values, unknown = detokenize(
            conn, rt.subject_keys, body.tokens, actor=ctx.actor, reason=body.reason
        )
    return {"values": values, "unknown": unknown}


async def post_events(request: Request, ctx: Ctx, sec_gpc: GpcHeader = None) -> Response:
    """Ingest a batch of up to 1,000 events; each is accepted or rejected with its code."""
    body = await request.body()
    results = await run_in_threadpool(
        ctx.runtime.pipeline.ingest, body, actor=ctx.actor, gpc=gpc_header(sec_gpc)
    )
    out = [
        {"event_id": r.event_id, "status": r.status, "purposes": r.purposes}
        | ({"code": r.code, "detail": r.detail} if r.code else {})
        for r in results
    ]
    accepted = sum(1 for r in results if r.code is None)
    payload = {"accepted": accepted, "rejected": len(results) - accepted, "results": out}
    return Response(msgspec.json.encode(payload), media_type="application/json")
