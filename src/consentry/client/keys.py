"""API keys (`client.api_keys`): who is calling, and minting and revoking keys (admin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from consentry.client.calls import Call, p, query_of
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import ApiKey, Me, Page

ME = Call("GET", "/v1/me")


def create(role: str, label: str, origins: Sequence[str] | None = None) -> Call:
    body: dict[str, object] = {"role": role, "label": label}
    if origins is not None:
        body["origins"] = list(origins)
    return Call("POST", "/v1/api-keys", body)


def listing(limit: int | None, cursor: str | None) -> Call:
    return Call("GET", "/v1/api-keys", query=query_of(limit=limit, cursor=cursor))


def revoke(key_id: str) -> Call:
    return Call("DELETE", f"/v1/api-keys/{p(key_id)}")


class ApiKeys(Resource):
    def me(self) -> Me:
        """`GET /v1/me`: the calling key's id, role and permissions."""
        return cast(Me, self._call(ME))

    def create(self, role: str, label: str = "", *, origins: Sequence[str] | None = None) -> ApiKey:
        """`POST /v1/api-keys`: the answer's `key` is shown this once; a `browser` key takes
        the web `origins` it is honoured from."""
        return cast(ApiKey, self._call(create(role, label, origins)))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[ApiKey]:
        return cast(Page[ApiKey], self._call(listing(limit, cursor)))

    def revoke(self, key_id: str) -> ApiKey:
        return cast(ApiKey, self._call(revoke(key_id)))


class AsyncApiKeys(AsyncResource):
    async def me(self) -> Me:
        return cast(Me, await self._call(ME))

    async def create(
        self, role: str, label: str = "", *, origins: Sequence[str] | None = None
    ) -> ApiKey:
        return cast(ApiKey, await self._call(create(role, label, origins)))

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[ApiKey]:
        return cast(Page[ApiKey], await self._call(listing(limit, cursor)))

    async def revoke(self, key_id: str) -> ApiKey:
        return cast(ApiKey, await self._call(revoke(key_id)))
