"""HTTP handlers for API keys and the caller's own identity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import Field

from consentry import clock
from consentry.auth import api_keys
from consentry.auth.models import ROLE_PERMISSIONS, ApiKey, Role
from consentry.auth.origins import MAX_ORIGINS
from consentry.errors import InvalidCursor
from consentry.http.auth import Ctx
from consentry.http.pagination import MAX_LIMIT, decode_cursor, encode_cursor, page
from consentry.http.schemas import Body


class ApiKeyIn(Body):
    role: Role
    label: str = Field(default="", max_length=api_keys.MAX_LABEL)
    # A browser key's web origins (https, or http on loopback in development).
    origins: list[str] = Field(default_factory=list, max_length=MAX_ORIGINS)


def key_out(key: ApiKey) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key_id": key.key_id,
        "role": key.role.value,
        "label": key.label,
        "created_at": clock.rfc3339(key.created_at),
        "revoked_at": clock.rfc3339(key.revoked_at) if key.revoked_at else None,
    }
    if key.role is Role.BROWSER:
        out["origins"] = list(key.origins)
    return out


def me(ctx: Ctx) -> dict[str, Any]:
    """The calling key's id, role and permissions."""
    permissions = sorted(p.value for p in ROLE_PERMISSIONS[ctx.principal.role])
    return {
        "key_id": ctx.principal.key_id,
        "role": ctx.principal.role.value,
        "permissions": permissions,
    }


def create_key(body: ApiKeyIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Mint an API key; the `key` field is shown this once and stored only as a hash."""
    with ctx.runtime.store.write() as conn:
        record, key = api_keys.create(
            conn, body.role, body.label, actor=ctx.actor, origins=body.origins
        )
    ctx.runtime.authenticator.key_created()
    response.status_code = 201
    return {**key_out(record), "key": key}


def list_keys(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    after = None
    if cursor is not None:
        position = decode_cursor(cursor, {"created_at", "key_id"})
        try:
            moment = datetime.fromisoformat(str(position["created_at"]))
            if moment.tzinfo is None:
                raise ValueError("naive time")
            moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise InvalidCursor("the cursor is not one this server made") from None
        after = (moment, str(position["key_id"]))
    with ctx.runtime.store.read() as conn:
        keys = api_keys.list_keys(conn, after=after, limit=limit + 1)
    more = len(keys) > limit
    keys = keys[:limit]
    next_cursor = (
        encode_cursor({"created_at": keys[-1].created_at.isoformat(), "key_id": keys[-1].key_id})
        if more
        else None
    )
    return page([key_out(k) for k in keys], next_cursor)


def revoke_key(key_id: str, ctx: Ctx) -> dict[str, Any]:
    """Revoke a key; it is refused from the next request on."""
    with ctx.runtime.store.write() as conn:
        record = api_keys.revoke(conn, key_id, actor=ctx.actor)
    ctx.runtime.authenticator.forget(key_id)
    return key_out(record)
