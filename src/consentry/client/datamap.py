"""The data map (`client.systems`): downstream systems, resending their deliveries,
acknowledging rights notices by hand, and the Art. 30 record (API.md, Data map)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from consentry.client.calls import Call, p
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import JSONObject, Page


def put(system_id: str, definition: Mapping[str, Any]) -> Call:
    return Call("PUT", f"/v1/systems/{p(system_id)}", dict(definition))


def get(system_id: str) -> Call:
    return Call("GET", f"/v1/systems/{p(system_id)}")


def delete(system_id: str) -> Call:
    return Call("DELETE", f"/v1/systems/{p(system_id)}")


def resend(system_id: str) -> Call:
    return Call("POST", f"/v1/systems/{p(system_id)}/resend")


def acknowledge_notice(notice_id: str) -> Call:
    return Call("POST", f"/v1/rights-notices/{p(notice_id)}/ack")


LIST = Call("GET", "/v1/systems")
ROPA = Call("GET", "/v1/ropa")


class Systems(Resource):
    def put(self, system_id: str, definition: Mapping[str, Any]) -> JSONObject:
        """`PUT /v1/systems/{id}` (name, kind, endpoint, purposes, data_categories, region,
        transfer_mechanism, dpa_signed, ...); a new system's answer carries its
        `signing_secret`, this once."""
        return cast(JSONObject, self._call(put(system_id, definition)))

    def get(self, system_id: str) -> JSONObject:
        return cast(JSONObject, self._call(get(system_id)))

    def list(self) -> Page[JSONObject]:
        return cast(Page[JSONObject], self._call(LIST))

    def delete(self, system_id: str) -> None:
        self._call(delete(system_id))

    def resend(self, system_id: str) -> JSONObject:
        """`POST /v1/systems/{id}/resend`: deliveries that gave up, queued again."""
        return cast(JSONObject, self._call(resend(system_id)))

    def acknowledge_notice(self, notice_id: str) -> None:
        """`POST /v1/rights-notices/{id}/ack`: a rights notice acknowledged by hand."""
        self._call(acknowledge_notice(notice_id))

    def ropa(self) -> JSONObject:
        """`GET /v1/ropa`: the record of processing activities (Art. 30)."""
        return cast(JSONObject, self._call(ROPA))


class AsyncSystems(AsyncResource):
    async def put(self, system_id: str, definition: Mapping[str, Any]) -> JSONObject:
        return cast(JSONObject, await self._call(put(system_id, definition)))

    async def get(self, system_id: str) -> JSONObject:
        return cast(JSONObject, await self._call(get(system_id)))

    async def list(self) -> Page[JSONObject]:
        return cast(Page[JSONObject], await self._call(LIST))

    async def delete(self, system_id: str) -> None:
        await self._call(delete(system_id))

    async def resend(self, system_id: str) -> JSONObject:
        return cast(JSONObject, await self._call(resend(system_id)))

    async def acknowledge_notice(self, notice_id: str) -> None:
        await self._call(acknowledge_notice(notice_id))

    async def ropa(self) -> JSONObject:
        return cast(JSONObject, await self._call(ROPA))
