"""HTTP handlers for purpose-scoped reads: query, event pages and exports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from consentry.auth.models import Role
from consentry.errors import InvalidPrivacyParameters
from consentry.http.auth import Ctx
from consentry.http.pagination import encode_cursor, int_position
from consentry.http.schemas import Body, Instant
from consentry.reads import dp
from consentry.reads.exports import Export
from consentry.reads.query import MAX_GROUP_BY, MAX_PAGE, Scope
from consentry.reads.query import Query as CountQuery

PurposeKey = Annotated[str, Field(min_length=1, max_length=64)]
EventTypeKey = Annotated[str, Field(min_length=1, max_length=64)]
FieldName = Annotated[str, Field(min_length=1, max_length=64)]


class QueryIn(Body):
    purpose: PurposeKey
    event_type: EventTypeKey | None = None
    start: Instant | None = Field(default=None, alias="from")
    end: Instant | None = Field(default=None, alias="to")
    group_by: list[FieldName] = Field(default_factory=list, max_length=MAX_GROUP_BY)
    metric: Literal["count", "count_subjects"] = "count"
    dp_epsilon: StrictFloat | StrictInt | None = None
    dp_bound: StrictInt | None = None


def _absent(value: object) -> bool:
    return value is None


class Suppressed(BaseModel):
    """Groups left out of `rows`: each drawn from fewer distinct subjects than
    CONSENTRY_MIN_GROUP_SUBJECTS. `value` is their total, given only when it is itself drawn
    from at least that many subjects."""

    groups: int
    value: int | None = Field(default=None, exclude_if=_absent)


class QueryOut(BaseModel):
    """A count of what the purpose may see now; `dp_epsilon` on a noisy answer, `suppressed`
    when groups were left out."""

    rows: list[dict[str, Any]]
    policy_version: int
    dp_epsilon: float | None = Field(default=None, exclude_if=_absent)
    suppressed: Suppressed | None = Field(default=None, exclude_if=_absent)


class ExportIn(Body):
    purpose: PurposeKey
    format: Literal["jsonl", "csv"] = "jsonl"
    event_type: EventTypeKey | None = None
    start: Instant | None = Field(default=None, alias="from")
    end: Instant | None = Field(default=None, alias="to")


def _scope(
    ctx: Ctx, purpose: str, event_type: str | None, start: datetime | None, end: datetime | None
) -> Scope:
    with ctx.runtime.store.read() as conn:
        return ctx.runtime.reads.scope(conn, purpose, event_type, start, end)


def post_query(body: QueryIn, ctx: Ctx) -> QueryOut:
    """A count of events (or of distinct subjects) the purpose may read now."""
    epsilon, bound = None, dp.DEFAULT_BOUND
    if body.dp_epsilon is not None or body.dp_bound is not None:
        bound = dp.DEFAULT_BOUND if body.dp_bound is None else body.dp_bound
        epsilon, bound = dp.check(body.dp_epsilon, bound)
        if body.group_by:
            raise InvalidPrivacyParameters(
                "differential privacy is answered for ungrouped counts only"
            )
    scope = _scope(ctx, body.purpose, body.event_type, body.start, body.end)
    query = CountQuery(scope, body.metric, tuple(body.group_by), epsilon, bound)
    answer = ctx.runtime.reads.query(query, key_id=ctx.principal.key_id, actor=ctx.actor)
    suppressed = answer.extra.get("suppressed")
    return QueryOut(
        rows=answer.rows,
        policy_version=answer.policy_version,
        dp_epsilon=answer.extra.get("dp_epsilon"),
        suppressed=None if suppressed is None else Suppressed(**suppressed),
    )


def get_events(
    ctx: Ctx,
    purpose: Annotated[str, Query(min_length=1, max_length=64)],
    event_type: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Events stored for the purpose whose subject allows it now, oldest first."""
    after = 0 if cursor is None else int_position(cursor, "after")
    scope = _scope(ctx, purpose, event_type, start, end)
    items, last, version = ctx.runtime.reads.page(scope, after, limit, actor=ctx.actor)
    return {
        "items": items,
        "next": None if last is None else encode_cursor({"after": last}),
        "policy_version": version,
    }


def post_export(body: ExportIn, ctx: Ctx) -> dict[str, Any]:
    """Create an export; its content is read, and consent checked, at download."""
    scope = _scope(ctx, body.purpose, body.event_type, body.start, body.end)
    export = ctx.runtime.exports.create(
        scope, body.format, key_id=ctx.principal.key_id, actor=ctx.actor
    )
    return export.out()


ExportId = Annotated[str, Path(min_length=1, max_length=40)]


def _own_export(ctx: Ctx, export_id: str) -> Export:
    # Admin and DPO may see every export; others only their key's.
    any_key = ctx.principal.role in {Role.ADMIN, Role.DPO}
    return ctx.runtime.exports.get(export_id, key_id=ctx.principal.key_id, any_key=any_key)


def get_export(export_id: ExportId, ctx: Ctx) -> dict[str, Any]:
    return _own_export(ctx, export_id).out()


def download_export(export_id: ExportId, ctx: Ctx, request: Request) -> StreamingResponse:
    """The export's events as they may be read now (JSON Lines or CSV), streamed."""
    export = _own_export(ctx, export_id)
    filters = export.filters
    scope = _scope(
        ctx,
        export.purpose,
        filters.get("event_type"),
        _time(filters.get("from")),
        _time(filters.get("to")),
    )
    version, content = ctx.runtime.exports.download(export, scope, actor=ctx.actor)
    media = "text/csv; charset=utf-8" if export.format == "csv" else "application/x-ndjson"
    suffix = "csv" if export.format == "csv" else "jsonl"
    return StreamingResponse(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{export.export_id}.{suffix}"',
            "X-Consentry-Policy-Version": str(version),
        },
    )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))
