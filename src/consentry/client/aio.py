"""`AsyncClient`: the mirror of `Client` (sync.py) for asyncio, every method awaited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, cast

import httpx2 as httpx

from consentry.client import calls
from consentry.client import transport as wire
from consentry.client.async_batcher import AsyncEventBatcher
from consentry.client.audit import AsyncAudit
from consentry.client.batches import ResultsHook, Retry, prepared
from consentry.client.datamap import AsyncSystems
from consentry.client.keys import AsyncApiKeys
from consentry.client.operations import AsyncComplianceReports, AsyncIncidents
from consentry.client.reads import AsyncReads
from consentry.client.resource import AsyncResource
from consentry.client.types import (
    CheckResult,
    Compliance,
    ConsentResult,
    ConsentState,
    ConsentToken,
    DataSubjectRequest,
    Event,
    EventsResult,
    JSONObject,
    Notice,
    NoticeRef,
    Page,
    PortalLink,
    Purpose,
    RestrictionLifted,
    Schema,
    Subject,
    SubjectLike,
    Verification,
)
from consentry.client.vendors import AsyncVendors


class Consents(AsyncResource):
    async def grant(
        self,
        subject: SubjectLike,
        purposes: Mapping[str, str] | Iterable[str],
        *,
        notice: NoticeRef | tuple[str, str] | None = None,
        jurisdiction: str | None = None,
        source: str = "api",
        tcf: str | None = None,
        gpc: bool | None = None,
        explicit: bool | None = None,
        age_band: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> ConsentResult:
        """`POST /v1/consents`. `purposes`: keys to grant, or `{key: "granted"|"denied"}`;
        `notice`: `{"id", "version"}` or `(id, version)`, needed to grant consent purposes."""
        call = calls.grant(
            subject,
            purposes,
            notice=notice,
            jurisdiction=jurisdiction,
            source=source,
            tcf=tcf,
            gpc=gpc,
            explicit=explicit,
            age_band=age_band,
            evidence=evidence,
        )
        return cast(ConsentResult, await self._call(call))

    async def withdraw(
        self,
        subject: SubjectLike,
        purposes: Sequence[str] | Literal["all"],
        *,
        source: str = "api",
    ) -> ConsentResult:
        """`POST /v1/consents/withdraw`: effective when it returns."""
        return cast(
            ConsentResult, await self._call(calls.withdraw(subject, purposes, source=source))
        )

    async def check(self, subject: SubjectLike, purpose: str) -> CheckResult:
        """`POST /v1/consents/check`: allowed, legal_basis, reason, version."""
        return cast(CheckResult, await self._call(calls.check(subject, purpose)))

    async def state(self, subject_id: str) -> ConsentState:
        """`GET /v1/subjects/{id}/consent`."""
        return cast(ConsentState, await self._call(calls.consent_state(subject_id)))

    async def history(
        self, subject_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[JSONObject]:
        """`GET /v1/subjects/{id}/consent/history`: ledger entries, oldest first."""
        call = calls.consent_history(subject_id, limit=limit, cursor=cursor)
        return cast(Page[JSONObject], await self._call(call))

    async def token(self, subject_id: str) -> ConsentToken:
        """`GET /v1/subjects/{id}/consent/token`: a fresh consent token."""
        return cast(ConsentToken, await self._call(calls.consent_token(subject_id)))

    async def compliance(self, subject_id: str) -> Compliance:
        """`GET /v1/subjects/{id}/compliance`."""
        return cast(Compliance, await self._call(calls.compliance(subject_id)))


class Events(AsyncResource):
    async def send(self, events: Sequence[Event], *, gpc: bool = False) -> EventsResult:
        """`POST /v1/events`: one batch, sent once (no retry); an event without an event_id
        gets a UUID, which its result names."""
        ready = [prepared(e) for e in events]
        return cast(EventsResult, await self._call(calls.send_events(ready, gpc=gpc)))

    async def list(
        self,
        purpose: str,
        *,
        event_type: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[JSONObject]:
        """`GET /v1/events`: events stored for `purpose` whose subject allows it now."""
        call = calls.list_events(
            purpose, event_type=event_type, from_=from_, to=to, limit=limit, cursor=cursor
        )
        return cast(Page[JSONObject], await self._call(call))

    def batcher(
        self,
        max_events: int = 500,
        max_seconds: float = 1.0,
        *,
        retry: Retry | None = None,
        on_results: ResultsHook | None = None,
        gpc: bool = False,
    ) -> AsyncEventBatcher:
        """A context manager batching `add(event)` calls (docs/client.md)."""
        return AsyncEventBatcher(
            self._client.exchange,
            max_events=max_events,
            max_seconds=max_seconds,
            retry=retry,
            on_results=on_results,
            gpc=gpc,
        )


class Purposes(AsyncResource):
    async def list(self) -> Page[Purpose]:
        return cast(Page[Purpose], await self._call(calls.list_purposes()))

    async def get(self, key: str) -> Purpose:
        return cast(Purpose, await self._call(calls.get_purpose(key)))

    async def put(self, key: str, definition: Mapping[str, Any]) -> Purpose:
        """`PUT /v1/purposes/{key}` with name, legal_basis, retention_days, ..."""
        return cast(Purpose, await self._call(calls.put_purpose(key, definition)))


class Notices(AsyncResource):
    async def put(
        self, notice_id: str, *, version: str, text: str, purposes: Sequence[str]
    ) -> Notice:
        """`PUT /v1/notices/{id}`: publish a version; the answer has the text's sha256."""
        call = calls.put_notice(notice_id, version=version, text=text, purposes=purposes)
        return cast(Notice, await self._call(call))


class Schemas(AsyncResource):
    async def list(self) -> Page[Schema]:
        return cast(Page[Schema], await self._call(calls.list_schemas()))

    async def get(self, event_type: str) -> Schema:
        return cast(Schema, await self._call(calls.get_schema(event_type)))

    async def put(
        self,
        event_type: str,
        *,
        purposes: Sequence[str],
        fields: Mapping[str, Mapping[str, Any]],
    ) -> Schema:
        call = calls.put_schema(event_type, purposes=purposes, fields=fields)
        return cast(Schema, await self._call(call))


class Subjects(AsyncResource):
    async def resolve(self, subject: SubjectLike, *, jurisdiction: str | None = None) -> Subject:
        """`POST /v1/subjects`: the subject these identities name, created when unknown."""
        call = calls.resolve_subject(subject, jurisdiction=jurisdiction)
        return cast(Subject, await self._call(call))

    async def get(self, subject_id: str) -> Subject:
        return cast(Subject, await self._call(calls.get_subject(subject_id)))

    async def lift_restriction(
        self, subject_id: str, *, reason: str, subject_informed_at: datetime | str
    ) -> RestrictionLifted:
        """`DELETE /v1/subjects/{id}/restriction` (Art. 18(3))."""
        call = calls.lift_restriction(
            subject_id, reason=reason, subject_informed_at=subject_informed_at
        )
        return cast(RestrictionLifted, await self._call(call))


class PortalLinks(AsyncResource):
    async def create(
        self, subject: SubjectLike, *, verification: Verification | None = None
    ) -> PortalLink:
        """`POST /v1/portal-links`: a signed link to the portal, valid 15 minutes."""
        call = calls.portal_link(subject, verification=verification)
        return cast(PortalLink, await self._call(call))


class Requests(AsyncResource):
    async def create(
        self,
        type: str,
        subject: SubjectLike,
        *,
        jurisdiction: str,
        format: str | None = None,
        verification: Verification | None = None,
        changes: Mapping[str, Any] | None = None,
        purposes: Sequence[str] | None = None,
        ground: str | None = None,
        scope: str | None = None,
        agent: Mapping[str, Any] | None = None,
    ) -> DataSubjectRequest:
        """`POST /v1/requests` (202): access, portability, erasure, rectification,
        restriction, objection or limit."""
        options = {
            "format": format,
            "verification": verification,
            "changes": changes,
            "purposes": None if purposes is None else list(purposes),
            "ground": ground,
            "scope": scope,
            "agent": agent,
        }
        call = calls.create_request(type, subject, jurisdiction=jurisdiction, options=options)
        return cast(DataSubjectRequest, await self._call(call))

    async def get(self, request_id: str) -> DataSubjectRequest:
        return cast(DataSubjectRequest, await self._call(calls.get_request(request_id)))

    async def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[DataSubjectRequest]:
        call = calls.list_requests(status=status, limit=limit, cursor=cursor)
        return cast(Page[DataSubjectRequest], await self._call(call))

    async def verify(self, request_id: str, verification: Verification) -> DataSubjectRequest:
        """`POST /v1/requests/{id}/verify` `{"method", "level"}`."""
        return cast(
            DataSubjectRequest, await self._call(calls.verify_request(request_id, verification))
        )

    async def extend(
        self,
        request_id: str,
        *,
        reason: str,
        subject_notified_at: datetime | str,
        months: int | None = None,
        days: int | None = None,
    ) -> DataSubjectRequest:
        """`POST /v1/requests/{id}/extend`: `months` (EU, UK, other) or `days` (US-CA)."""
        call = calls.extend_request(
            request_id,
            months=months,
            days=days,
            reason=reason,
            subject_notified_at=subject_notified_at,
        )
        return cast(DataSubjectRequest, await self._call(call))

    async def reject(self, request_id: str, reason: str) -> DataSubjectRequest:
        return cast(DataSubjectRequest, await self._call(calls.reject_request(request_id, reason)))

    async def acknowledge(self, request_id: str, system_id: str) -> DataSubjectRequest:
        """`POST /v1/requests/{id}/acks`: a system's manual acknowledgement."""
        call = calls.acknowledge_request(request_id, system_id)
        return cast(DataSubjectRequest, await self._call(call))

    async def decide(
        self, request_id: str, *, purpose: str, outcome: str, grounds: str
    ) -> DataSubjectRequest:
        """`POST /v1/requests/{id}/decision` on an objection: upheld or overridden."""
        call = calls.decide_objection(request_id, purpose=purpose, outcome=outcome, grounds=grounds)
        return cast(DataSubjectRequest, await self._call(call))

    async def result(self, request_id: str) -> JSONObject:
        """`GET /v1/requests/{id}/result` as JSON."""
        return cast(JSONObject, await self._call(calls.request_result(request_id)))

    async def result_csv(self, request_id: str) -> str:
        """`GET /v1/requests/{id}/result` as CSV (portability)."""
        return cast(str, await self._call(calls.request_result(request_id, csv=True)))


class AsyncClient:
    """The Consentry API over HTTP for asyncio: `AsyncClient(base_url, api_key)`, used with
    `async with` or `await close()`. Errors as `Client`'s."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = wire.DEFAULT_TIMEOUT_SECONDS,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers=wire.headers(api_key, headers),
            transport=transport,
        )
        self.consents = Consents(self)
        self.events = Events(self)
        self.purposes = Purposes(self)
        self.notices = Notices(self)
        self.schemas = Schemas(self)
        self.subjects = Subjects(self)
        self.portal_links = PortalLinks(self)
        self.requests = Requests(self)
        self.reads = AsyncReads(self)
        self.systems = AsyncSystems(self)
        self.vendors = AsyncVendors(self)
        self.audit = AsyncAudit(self)
        self.api_keys = AsyncApiKeys(self)
        self.incidents = AsyncIncidents(self)
        self.compliance = AsyncComplianceReports(self)

    async def exchange(self, call: calls.Call) -> Any:
        """Send one call once: its answer, or ConsentryAPIError / ConsentryConnectionError."""
        request = wire.build(self._http, call)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise wire.connection_error(exc) from exc
        return wire.answer(response)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()
