"""The breach register (`client.incidents`) and the compliance summary
(`client.compliance`) (API.md, Operations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, cast

from consentry.client.calls import Call, drop_none, p, query_of, rfc3339
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import JSONObject, Page


def create_incident(record: Mapping[str, Any]) -> Call:
    return Call("POST", "/v1/incidents", dict(record))


def list_incidents(*, status: str | None, limit: int | None, cursor: str | None) -> Call:
    return Call("GET", "/v1/incidents", query=query_of(status=status, limit=limit, cursor=cursor))


def get_incident(incident_id: str) -> Call:
    return Call("GET", f"/v1/incidents/{p(incident_id)}")


def notify_incident(
    incident_id: str,
    *,
    to: str,
    at: datetime | str,
    reference: str | None,
    delay_reasons: Sequence[str] | None,
) -> Call:
    body = {"to": to, "at": rfc3339(at)} | drop_none(
        reference=reference, delay_reasons=None if delay_reasons is None else list(delay_reasons)
    )
    return Call("POST", f"/v1/incidents/{p(incident_id)}/notifications", body)


def close_incident(incident_id: str, *, late_reason: str | None) -> Call:
    return Call("POST", f"/v1/incidents/{p(incident_id)}/close", drop_none(late_reason=late_reason))


def compliance_summary(
    *, from_: datetime | str | None, to: datetime | str | None, series: str | None
) -> Call:
    return Call("GET", "/v1/compliance/summary", query=query_of(from_=from_, to=to, series=series))


class Incidents(Resource):
    def create(self, record: Mapping[str, Any]) -> JSONObject:
        """`POST /v1/incidents` with detected_at, aware_at, description, nature, ..."""
        return cast(JSONObject, self._call(create_incident(record)))

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[JSONObject]:
        call = list_incidents(status=status, limit=limit, cursor=cursor)
        return cast(Page[JSONObject], self._call(call))

    def get(self, incident_id: str) -> JSONObject:
        return cast(JSONObject, self._call(get_incident(incident_id)))

    def notify(
        self,
        incident_id: str,
        *,
        to: str,
        at: datetime | str,
        reference: str | None = None,
        delay_reasons: Sequence[str] | None = None,
    ) -> JSONObject:
        """`POST /v1/incidents/{id}/notifications` (append-only)."""
        call = notify_incident(
            incident_id, to=to, at=at, reference=reference, delay_reasons=delay_reasons
        )
        return cast(JSONObject, self._call(call))

    def close(self, incident_id: str, *, late_reason: str | None = None) -> JSONObject:
        return cast(JSONObject, self._call(close_incident(incident_id, late_reason=late_reason)))


class ComplianceReports(Resource):
    def summary(
        self,
        *,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        series: Literal["day"] | None = None,
    ) -> JSONObject:
        """`GET /v1/compliance/summary`, over a window when given."""
        call = compliance_summary(from_=from_, to=to, series=series)
        return cast(JSONObject, self._call(call))


class AsyncIncidents(AsyncResource):
    async def create(self, record: Mapping[str, Any]) -> JSONObject:
        """`POST /v1/incidents` with detected_at, aware_at, description, nature, ..."""
        return cast(JSONObject, await self._call(create_incident(record)))

    async def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[JSONObject]:
        call = list_incidents(status=status, limit=limit, cursor=cursor)
        return cast(Page[JSONObject], await self._call(call))

    async def get(self, incident_id: str) -> JSONObject:
        return cast(JSONObject, await self._call(get_incident(incident_id)))

    async def notify(
        self,
        incident_id: str,
        *,
        to: str,
        at: datetime | str,
        reference: str | None = None,
        delay_reasons: Sequence[str] | None = None,
    ) -> JSONObject:
        """`POST /v1/incidents/{id}/notifications` (append-only)."""
        call = notify_incident(
            incident_id, to=to, at=at, reference=reference, delay_reasons=delay_reasons
        )
        return cast(JSONObject, await self._call(call))

    async def close(self, incident_id: str, *, late_reason: str | None = None) -> JSONObject:
        return cast(
            JSONObject, await self._call(close_incident(incident_id, late_reason=late_reason))
        )


class AsyncComplianceReports(AsyncResource):
    async def summary(
        self,
        *,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        series: Literal["day"] | None = None,
    ) -> JSONObject:
        """`GET /v1/compliance/summary`, over a window when given."""
        call = compliance_summary(from_=from_, to=to, series=series)
        return cast(JSONObject, await self._call(call))
