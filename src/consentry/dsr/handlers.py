"""HTTP handlers for data-subject requests and the subject's restriction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictInt

from consentry import clock
from consentry.dsr.models import (
    DOWNLOADABLE,
    Level,
    MatchedEvidence,
    Request,
    RequestType,
    Scope,
    Status,
    Verification,
)
from consentry.dsr.records import REQUEST_ID
from consentry.dsr.requests import NewRequest
from consentry.errors import AgentProofRequired, InvalidRequest
from consentry.http.auth import Ctx
from consentry.http.pagination import MAX_LIMIT, encode_cursor, page, str_position
from consentry.http.schemas import Body, Instant
from consentry.subjects.handlers import SubjectRefIn
from consentry.subjects.models import IdentityType, Jurisdiction
from consentry.subjects.normalise import normalise


class VerificationIn(Body):
    method: str = Field(min_length=1, max_length=64)
    level: Literal["reasonable", "high"]
    matched: list[IdentityType | MatchedEvidence] | None = Field(
        default=None, min_length=1, max_length=10
    )

    def to_verification(self) -> Verification:
        matched = None if self.matched is None else tuple(str(m) for m in self.matched)
        return Verification(self.method, Level(self.level), matched)


class AgentProofIn(Body):
    kind: Literal["signed_permission", "power_of_attorney"]
    reference: str = Field(min_length=1, max_length=200)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class AgentIn(Body):
    name: str = Field(min_length=1, max_length=200)
    proof: AgentProofIn | None = None


class IdentityChangeIn(Body):
    type: IdentityType
    old_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    value: str = Field(min_length=1, max_length=1024)


class ChangesIn(Body):
    identities: list[IdentityChangeIn] = Field(min_length=1, max_length=10)


class RequestIn(Body):
    type: RequestType
    subject: SubjectRefIn
    jurisdiction: Jurisdiction
    format: Literal["json", "csv"] | None = None
    verification: VerificationIn | None = None
    changes: ChangesIn | None = None
    purposes: list[str] | None = Field(default=None, max_length=100)
    ground: Literal["18_1_a", "18_1_b", "18_1_c", "18_1_d"] | None = None
    scope: Scope | None = None
    agent: AgentIn | None = None


class PortalLinkIn(Body):
    subject: SubjectRefIn
    verification: VerificationIn | None = None


class ExtendIn(Body):
    months: StrictInt | None = None
    days: StrictInt | None = None
    reason: str = Field(min_length=1, max_length=2000)
    subject_notified_at: Instant


class RejectIn(Body):
    reason: str = Field(min_length=1, max_length=2000)


class AckIn(Body):
    system_id: str = Field(min_length=1, max_length=64)


class DecisionIn(Body):
    purpose: str = Field(min_length=1, max_length=64)
    outcome: Literal["upheld", "overridden"]
    grounds: str = Field(min_length=1, max_length=2000)


class LiftIn(Body):
    reason: str = Field(min_length=1, max_length=2000)
    subject_informed_at: Instant


def _t(moment: datetime | None) -> str | None:
    return clock.rfc3339(moment) if moment else None


def request_out(
    ctx: Ctx,
    request: Request,
    *,
    duplicate: bool = False,
    agents: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The request as the API shows it; `agents`: the agents of a page, opened with its rows
    (otherwise a request an agent made reads its own)."""
    verified = request.verified_at is not None
    out: dict[str, Any] = {
        "request_id": request.request_id,
        "type": request.type.value,
        "status": request.status.value,
        "jurisdiction": request.jurisdiction,
        "received_at": _t(request.received_at),
        "due_at": _t(request.due_at),
        "extended": request.extended_at is not None,
        "verification": {
            "level": request.verification_level.value if request.verification_level else None,
            "required": request.required.value,
            "verified_at": _t(request.verified_at),
        },
        "completed_at": _t(request.completed_at),
    }
    if request.scope is not None:
        out["scope"] = request.scope.value
    # The operator's own record of who asked on the subject's behalf: it tells nothing about
    # the subject, so it is shown before verification too.
    if request.has_agent:
        agent = (
            agents.get(request.request_id)
            if agents is not None
            else ctx.runtime.requests.agent_of(request.request_id)
        )
        if agent is not None:
            out["agent"] = agent
    if request.acknowledge_by is not None:
        out["acknowledge_by"] = _t(request.acknowledge_by)
    if request.purposes is not None:
        out["purposes"] = request.purposes
    if request.ground is not None:
        out["ground"] = request.ground
    if request.format is not None:
        out["format"] = request.format
    if request.reason is not None:
        out["reason"] = ctx.runtime.requests.reason_text(request)
    # Whether the person is a customer, and whose systems hold the person's data, is told
    # only once the requester is verified: an unverified direct-marketing objection answers
    # the same for a known and an unknown person.
    if verified:
        out["subject_found"] = request.subject_id is not None
        out["subject_id"] = request.subject_id
        out["step"] = request.step.value
        out["downstream"] = ctx.runtime.requests.acks(request.request_id)
        out["notices"] = ctx.runtime.requests.notices(request.request_id)
        topics = ctx.runtime.requests.topics(request.request_id)
        if topics:
            # Stream mode: an erasure waits for the subject's records on consented topics.
            out["topics"] = topics
    if duplicate:
        out["duplicate"] = True
    return out


def create_request(body: RequestIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Receive a data-subject request (202); an open one of the same subject and type is
    returned instead of a second."""
    rt = ctx.runtime
    region = rt.settings.default_phone_region
    changes = []
    if body.type is RequestType.RECTIFICATION:
        if body.changes is None:
            raise InvalidRequest("a rectification carries changes.identities")
        changes = [
            {
                "type": c.type.value,
                "old_sha256": c.old_sha256.lower(),
                "value": normalise(c.type, c.value, region).value,
            }
            for c in body.changes.identities
        ]
    if body.type is RequestType.RESTRICTION and body.ground is None:
        raise InvalidRequest("a restriction names its ground (Art. 18(1) a to d)")
    if body.scope is not None and body.type is not RequestType.ACCESS:
        raise InvalidRequest("scope applies to access requests")
    agent = None
    if body.agent is not None:
        if body.agent.proof is None:
            # Regs §7063(a): without proof of authorisation, nobody may act for the subject.
            raise AgentProofRequired("an authorised agent's request carries agent.proof")
        agent = body.agent.model_dump(exclude_none=True)
    fmt = body.format
    if fmt is not None and body.type not in DOWNLOADABLE:
        raise InvalidRequest("format applies to access and portability requests")
    if fmt == "csv" and body.type is not RequestType.PORTABILITY:
        raise InvalidRequest("an access report is JSON; CSV is for portability")
    if fmt is not None and body.scope is Scope.CATEGORIES:
        raise InvalidRequest("a categories-only report is JSON; format applies to the data")
    verification = None
    if body.verification is not None:
        verification = body.verification.to_verification()
    new = NewRequest(
        type=body.type,
        ref=body.subject.to_ref(region),
        jurisdiction=body.jurisdiction,
        format=fmt,
        verification=verification,
        changes=changes,
        purposes=body.purposes,
        ground=body.ground,
        scope=body.scope,
        agent=agent,
    )
    request, duplicate = rt.requests.create(new, actor=ctx.actor)
    response.status_code = 202
    return request_out(ctx, request, duplicate=duplicate)


def get_request(request_id: str, ctx: Ctx) -> dict[str, Any]:
    """One request: status, deadlines, verification, downstream acknowledgements."""
    return request_out(ctx, ctx.runtime.requests.get(request_id))


def list_requests(
    ctx: Ctx,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Requests in id order, optionally of one status."""
    after = None
    if cursor is not None:
        after = str_position(cursor, "after", REQUEST_ID)
    items, agents = ctx.runtime.requests.listing(
        status=status.value if status else None, after=after, limit=limit
    )
    nxt = encode_cursor({"after": items[-1].request_id}) if len(items) == limit else None
    return page([request_out(ctx, r, agents=agents) for r in items], nxt)


def verify_request(request_id: str, body: VerificationIn, ctx: Ctx) -> dict[str, Any]:
    """Record the requester's verification; at the type's level the request proceeds."""
    request = ctx.runtime.requests.verify(request_id, body.to_verification(), actor=ctx.actor)
    return request_out(ctx, request)


def extend_request(request_id: str, body: ExtendIn, ctx: Ctx) -> dict[str, Any]:
    """Extend the deadline once, before it passes, within the legal limit."""
    request = ctx.runtime.requests.extend(
        request_id,
        months=body.months,
        days=body.days,
        reason=body.reason,
        subject_notified_at=body.subject_notified_at,
        actor=ctx.actor,
    )
    return request_out(ctx, request)


def reject_request(request_id: str, body: RejectIn, ctx: Ctx) -> dict[str, Any]:
    """Refuse a request, saying why (Art. 12(4))."""
    return request_out(ctx, ctx.runtime.requests.reject(request_id, body.reason, actor=ctx.actor))


def acknowledge_request(request_id: str, body: AckIn, ctx: Ctx) -> dict[str, Any]:
    """A downstream system's manual acknowledgement of the request's notice."""
    request = ctx.runtime.requests.acknowledge(
        request_id, body.system_id, actor=ctx.actor, via="manual"
    )
    return request_out(ctx, request)


def decide_objection(request_id: str, body: DecisionIn, ctx: Ctx) -> dict[str, Any]:
    """Decide an objection to one purpose: upheld (objected) or overridden."""
    request = ctx.runtime.requests.decide(
        request_id, body.purpose, body.outcome, body.grounds, actor=ctx.actor
    )
    return request_out(ctx, request)


def request_result(
    request_id: str, ctx: Ctx, accept: Annotated[str | None, Header()] = None
) -> Any:
    """The result of a completed request: the report or copy (streamed), or what was done."""
    result = ctx.runtime.results.read(
        request_id, actor=ctx.actor, csv=(accept or "").startswith("text/csv")
    )
    if result.stream is None:
        return result.document
    return StreamingResponse(result.stream, media_type=result.media_type)


def lift_restriction(subject_id: str, body: LiftIn, ctx: Ctx) -> dict[str, Any]:
    """Art. 18(3): lift a restriction, with the reason and when the subject was informed."""
    lifted, systems = ctx.runtime.requests.lift_restriction(
        subject_id,
        reason=body.reason,
        subject_informed_at=clock.rfc3339(body.subject_informed_at),
        actor=ctx.actor,
    )
    # The notices name the restriction request they end; its `notices` track them.
    return {
        "subject_id": subject_id,
        "restricted": False,
        "request_id": lifted,
        "notified": systems,
    }


def create_portal_link(body: PortalLinkIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """A signed link opening the portal for one subject, valid 15 minutes, carrying the
    verification the collector attests (`high` only after re-authentication)."""
    rt = ctx.runtime
    verification = body.verification.to_verification() if body.verification else None
    ref = body.subject.to_ref(rt.settings.default_phone_region)
    with rt.store.write() as conn:
        link = rt.portal_links.mint(conn, ref, verification, actor=ctx.actor)
    response.status_code = 201
    return {"url": link.url, "expires_at": clock.rfc3339(link.expires_at), "level": link.level}
