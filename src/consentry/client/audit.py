"""The audit log's reads (`client.audit`): entries, the signed head, proofs, and the JWKS that
verifies heads and consent tokens (API.md, Audit)."""

from __future__ import annotations

from typing import Any, cast

from consentry.client.calls import Call, query_of
from consentry.client.resource import AsyncResource, Resource
from consentry.client.types import (
    AuditEntry,
    AuditHead,
    ConsistencyProof,
    InclusionProof,
    Page,
)


def entries(
    *, from_index: int | None, limit: int | None, subject_id: str | None, cursor: str | None
) -> Call:
    query = query_of(from_index=from_index, limit=limit, subject_id=subject_id, cursor=cursor)
    return Call("GET", "/v1/audit/entries", query=query)


HEAD = Call("GET", "/v1/audit/head")
JWKS = Call("GET", "/.well-known/jwks.json")


def inclusion(index: int, size: int) -> Call:
    return Call("GET", "/v1/audit/proof/inclusion", query={"index": index, "size": size})


def consistency(first: int, second: int) -> Call:
    return Call("GET", "/v1/audit/proof/consistency", query={"first": first, "second": second})


class Audit(Resource):
    def entries(
        self,
        *,
        from_index: int | None = None,
        limit: int | None = None,
        subject_id: str | None = None,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        """`GET /v1/audit/entries` in index order (reading them is itself audited)."""
        call = entries(from_index=from_index, limit=limit, subject_id=subject_id, cursor=cursor)
        return cast(Page[AuditEntry], self._call(call))

    def head(self) -> AuditHead:
        """`GET /v1/audit/head`: the signed tree head."""
        return cast(AuditHead, self._call(HEAD))

    def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        return cast(InclusionProof, self._call(inclusion(index, size)))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        return cast(ConsistencyProof, self._call(consistency(first, second)))

    def jwks(self) -> dict[str, Any]:
        """`GET /.well-known/jwks.json`: the keys of consent tokens and audit heads."""
        return cast(dict[str, Any], self._call(JWKS))


class AsyncAudit(AsyncResource):
    async def entries(
        self,
        *,
        from_index: int | None = None,
        limit: int | None = None,
        subject_id: str | None = None,
        cursor: str | None = None,
    ) -> Page[AuditEntry]:
        call = entries(from_index=from_index, limit=limit, subject_id=subject_id, cursor=cursor)
        return cast(Page[AuditEntry], await self._call(call))

    async def head(self) -> AuditHead:
        return cast(AuditHead, await self._call(HEAD))

    async def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        return cast(InclusionProof, await self._call(inclusion(index, size)))

    async def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        return cast(ConsistencyProof, await self._call(consistency(first, second)))

    async def jwks(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call(JWKS))
