"""The vendor register (`client.vendors`): processors with their DPA dates, CCPA contract and
sub-processors, which systems name (API.md, Governance: Vendors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from consentry.client.calls import Call, p
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import JSONObject, Page


def put(vendor_id: str, definition: Mapping[str, Any]) -> Call:
    return Call("PUT", f"/v1/vendors/{p(vendor_id)}", dict(definition))


def get(vendor_id: str) -> Call:
    return Call("GET", f"/v1/vendors/{p(vendor_id)}")


def delete(vendor_id: str) -> Call:
    return Call("DELETE", f"/v1/vendors/{p(vendor_id)}")


LIST = Call("GET", "/v1/vendors")


class Vendors(Resource):
    def put(self, vendor_id: str, definition: Mapping[str, Any]) -> JSONObject:
        """`PUT /v1/vendors/{id}` (name, dpa_signed_at, dpa_expires_at, ccpa_contract_at,
        sub_processors, certifications, risk, reviewed_at)."""
        return cast(JSONObject, self._call(put(vendor_id, definition)))

    def get(self, vendor_id: str) -> JSONObject:
        return cast(JSONObject, self._call(get(vendor_id)))

    def list(self) -> Page[JSONObject]:
        return cast(Page[JSONObject], self._call(LIST))

    def delete(self, vendor_id: str) -> None:
        """Refused (`vendor_in_use`) while a system names the vendor."""
        self._call(delete(vendor_id))


class AsyncVendors(AsyncResource):
    async def put(self, vendor_id: str, definition: Mapping[str, Any]) -> JSONObject:
        return cast(JSONObject, await self._call(put(vendor_id, definition)))

    async def get(self, vendor_id: str) -> JSONObject:
        return cast(JSONObject, await self._call(get(vendor_id)))

    async def list(self) -> Page[JSONObject]:
        return cast(Page[JSONObject], await self._call(LIST))

    async def delete(self, vendor_id: str) -> None:
        await self._call(delete(vendor_id))
