"""Purpose-scoped reads (`client.reads`): counts and exports, each checked against consent at
the moment of the read (API.md, Reads). Event pages are `client.events.list`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, cast

from consentry.client.calls import Call, p, time_or_none
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import Export, QueryAnswer

Metric = Literal["count", "count_subjects"]
Format = Literal["jsonl", "csv"]


def query(
    purpose: str,
    *,
    metric: Metric,
    event_type: str | None,
    from_: datetime | str | None,
    to: datetime | str | None,
    group_by: Sequence[str] | None,
    dp_epsilon: float | None,
) -> Call:
    body = {"purpose": purpose, "metric": metric}
    extra = {
        "event_type": event_type,
        "from": time_or_none(from_),
        "to": time_or_none(to),
        "group_by": None if group_by is None else list(group_by),
        "dp_epsilon": dp_epsilon,
    }
    return Call("POST", "/v1/query", body | {k: v for k, v in extra.items() if v is not None})


def create_export(
    purpose: str,
    *,
    format: Format,
    event_type: str | None,
    from_: datetime | str | None,
    to: datetime | str | None,
) -> Call:
    body = {"purpose": purpose, "format": format}
    extra = {"event_type": event_type, "from": time_or_none(from_), "to": time_or_none(to)}
    return Call("POST", "/v1/exports", body | {k: v for k, v in extra.items() if v is not None})


def get_export(export_id: str) -> Call:
    return Call("GET", f"/v1/exports/{p(export_id)}")


def download_export(export_id: str) -> Call:
    return Call("GET", f"/v1/exports/{p(export_id)}/download", accept="*/*")


class Reads(Resource):
    def query(
        self,
        purpose: str,
        *,
        metric: Metric = "count",
        event_type: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        group_by: Sequence[str] | None = None,
        dp_epsilon: float | None = None,
    ) -> QueryAnswer:
        """`POST /v1/query`: a count of what `purpose` may see now."""
        call = query(
            purpose,
            metric=metric,
            event_type=event_type,
            from_=from_,
            to=to,
            group_by=group_by,
            dp_epsilon=dp_epsilon,
        )
        return cast(QueryAnswer, self._call(call))

    def create_export(
        self,
        purpose: str,
        *,
        format: Format = "jsonl",
        event_type: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
    ) -> Export:
        """`POST /v1/exports`: what it holds is read, and consent checked, at download."""
        call = create_export(purpose, format=format, event_type=event_type, from_=from_, to=to)
        return cast(Export, self._call(call))

    def get_export(self, export_id: str) -> Export:
        return cast(Export, self._call(get_export(export_id)))

    def download_export(self, export_id: str) -> str:
        """`GET /v1/exports/{id}/download`: JSON Lines or CSV, as text."""
        return cast(str, self._call(download_export(export_id)))


class AsyncReads(AsyncResource):
    async def query(
        self,
        purpose: str,
        *,
        metric: Metric = "count",
        event_type: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        group_by: Sequence[str] | None = None,
        dp_epsilon: float | None = None,
    ) -> QueryAnswer:
        call = query(
            purpose,
            metric=metric,
            event_type=event_type,
            from_=from_,
            to=to,
            group_by=group_by,
            dp_epsilon=dp_epsilon,
        )
        return cast(QueryAnswer, await self._call(call))

    async def create_export(
        self,
        purpose: str,
        *,
        format: Format = "jsonl",
        event_type: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
    ) -> Export:
        call = create_export(purpose, format=format, event_type=event_type, from_=from_, to=to)
        return cast(Export, await self._call(call))

    async def get_export(self, export_id: str) -> Export:
        return cast(Export, await self._call(get_export(export_id)))

    async def download_export(self, export_id: str) -> str:
        return cast(str, await self._call(download_export(export_id)))
