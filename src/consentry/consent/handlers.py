"""HTTP handlers for purposes, notices, consents, checks, consent state, history and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

import msgspec
from fastapi import Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictBool, StrictInt
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from consentry import clock
from consentry.consent import ledger, notices, report
from consentry.consent.models import (
    AutomatedDecisionBasis,
    LegalBasis,
    Purpose,
    PurposeState,
    Source,
    State,
    SubjectConsent,
    UsCaModel,
)
from consentry.consent.service import ConsentResult, ConsentWrite
from consentry.consent.signals import gpc_header
from consentry.consent.tokens import ConsentToken
from consentry.errors import InvalidWindow, PurposeNotFound
from consentry.http.auth import Ctx
from consentry.http.pagination import MAX_LIMIT, encode_cursor, int_position, page
from consentry.http.schemas import Body, Instant
from consentry.operations import counters
from consentry.subjects.handlers import SubjectRefBody, SubjectRefIn

GpcHeader = Annotated[str | None, Header(alias="Sec-GPC")]


class PurposeIn(Body):
    name: str = Field(min_length=1, max_length=200)
    legal_basis: LegalBasis
    retention_days: StrictInt = Field(ge=1, le=36_500)
    consent_ttl_days: StrictInt = Field(default=395, ge=1, le=36_500)
    sale_or_share: StrictBool = False
    direct_marketing: StrictBool = False
    strictly_necessary: StrictBool = False
    special_category_condition: str | None = Field(default=None, max_length=1)
    us_ca_model: UsCaModel = UsCaModel.OPT_IN
    retain_identities: StrictBool = False
    data_use: str | None = Field(default=None, max_length=100)
    automated_decision_basis: AutomatedDecisionBasis | None = None
    description: str = Field(default="", max_length=2000)


class NoticeIn(Body):
    version: str = Field(min_length=1, max_length=notices.MAX_VERSION)
    text: str = Field(min_length=1, max_length=200_000)
    purposes: list[str] = Field(min_length=1, max_length=100)


class NoticeRefIn(Body):
    id: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)


class ConsentIn(Body):
    subject: SubjectRefIn
    purposes: dict[str, str] = Field(default_factory=dict, max_length=100)
    source: str = Field(max_length=16)
    notice: NoticeRefIn | None = None
    jurisdiction: str | None = Field(default=None, max_length=8)
    tcf: str | None = Field(default=None, max_length=65_536)
    gpc: StrictBool = False
    explicit: StrictBool = False
    age_band: str | None = Field(default=None, max_length=16)
    evidence: dict[str, Any] | None = None


class WithdrawIn(Body):
    subject: SubjectRefIn
    purposes: list[str] | Literal["all"]
    source: str = Field(default="api", max_length=16)


# The body of a consent check as documented (http/openapi.RAW_BODIES, no docstring: it would
# become the schema's description); the route decodes it as CheckBody.
class CheckIn(Body):
    subject: SubjectRefIn
    purpose: str = Field(max_length=64)


class CheckBody(msgspec.Struct, forbid_unknown_fields=True):
    """CheckIn as the route decodes it, from the raw body (http/bodies.py): the same fields,
    in the same order, with the same rules."""

    subject: SubjectRefBody
    purpose: Annotated[str, msgspec.Meta(max_length=64)]


def purpose_out(purpose: Purpose) -> dict[str, Any]:
    out = asdict(purpose)
    del out["bit"]  # a storage detail
    return out


def put_purpose(key: str, body: PurposeIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Create or replace a purpose; its legal basis is locked once anything refers to it."""
    purpose = Purpose(key=key, **body.model_dump())
    with ctx.runtime.store.write() as conn:
        stored, created = ctx.runtime.purposes.put(conn, purpose, actor=ctx.actor)
    response.status_code = 201 if created else 200
    return purpose_out(stored)


def list_purposes(ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        purposes = ctx.runtime.purposes.all(conn)
    return page([purpose_out(p) for _, p in sorted(purposes.items())], None)


def get_purpose(key: str, ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        purpose = ctx.runtime.purposes.all(conn).get(key)
    if purpose is None:
        raise PurposeNotFound(f"no purpose {key!r}", purpose=key)
    return purpose_out(purpose)


NoticeId = Annotated[str, Path(min_length=1, max_length=64, pattern=notices.NOTICE_ID)]


def put_notice(notice_id: NoticeId, body: NoticeIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Publish a notice version; the response carries the SHA-256 of its text."""
    rt = ctx.runtime
    with rt.store.write() as conn:
        notice, created = notices.publish(
            conn, rt.purposes, notice_id, body.version, body.text, body.purposes, actor=ctx.actor
        )
    response.status_code = 201 if created else 200
    return {
        "notice_id": notice.notice_id,
        "version": notice.version,
        "sha256": notice.sha256,
        "purposes": sorted(notice.purposes),
    }


def get_notice(
    notice_id: NoticeId,
    ctx: Ctx,
    version: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """A notice's text, its SHA-256 and the purposes it covers: the newest version, or
    `?version=`."""
    with ctx.runtime.store.read() as conn:
        notice, text = notices.read(conn, notice_id, version)
    return {
        "notice_id": notice.notice_id,
        "version": notice.version,
        "sha256": notice.sha256,
        "purposes": sorted(notice.purposes),
        "text": text,
    }


def record_consent(body: ConsentIn, ctx: Ctx, sec_gpc: GpcHeader = None) -> dict[str, Any]:
    """Record consent decisions (and a TC string, and GPC) for a subject."""
    rt = ctx.runtime
    write = ConsentWrite(
        ref=body.subject.to_ref(rt.settings.default_phone_region),
        purposes=body.purposes,
        source=body.source,
        notice=(body.notice.id, body.notice.version) if body.notice else None,
        jurisdiction=body.jurisdiction,
        tcf=body.tcf,
        gpc=body.gpc or gpc_header(sec_gpc),
        explicit=body.explicit,
        age_band=body.age_band,
        evidence=body.evidence,
    )
    return result_out(rt.consent.record(write, actor=ctx.actor))


def withdraw_consent(body: WithdrawIn, ctx: Ctx, sec_gpc: GpcHeader = None) -> dict[str, Any]:
    """Withdraw consent: no notice, no verification; effective when this returns."""
    rt = ctx.runtime
    which = None if body.purposes == "all" else list(body.purposes)
    result = rt.consent.withdraw(
        body.subject.to_ref(rt.settings.default_phone_region),
        which,
        body.source,
        gpc=gpc_header(sec_gpc),
        actor=ctx.actor,
    )
    return result_out(result)


async def check_consent(_request: Request, ctx: Ctx, body: CheckBody) -> Response:
    """May this purpose process this subject's data now, and why."""
    rt = ctx.runtime
    ref = body.subject.to_ref(rt.settings.default_phone_region)
    # One statement on a local WAL file, which never waits for the writer, is cheaper on the
    # event loop than the hop to a worker thread; anything more goes to a thread.
    decision = rt.consent.check_held(ref, body.purpose)
    if decision is None:
        decision = await run_in_threadpool(rt.consent.check_now, ref, body.purpose)
    counters.count_check(decision.reason.value)
    answer = {
        "allowed": decision.allowed,
        "legal_basis": decision.legal_basis.value,
        "reason": decision.reason.value,
        "version": decision.version,
    }
    return Response(msgspec.json.encode(answer), media_type="application/json")


def get_consent(subject_id: str, ctx: Ctx) -> dict[str, Any]:
    """The subject's current consent state per purpose."""
    with ctx.runtime.store.read() as conn:
        state = ctx.runtime.consent.state(conn, subject_id)
    return state_out(state)


def get_compliance(subject_id: str, ctx: Ctx) -> dict[str, Any]:
    """The subject's compliance status over the consent-based purposes, and each one's reason."""
    with ctx.runtime.store.read() as conn:
        found = ctx.runtime.consent.compliance(conn, subject_id)
    out: dict[str, Any] = {
        "subject_id": found.subject_id,
        "status": found.status.value,
        "purposes": {key: reason.value for key, reason in found.reasons.items()},
        "version": found.version,
    }
    if found.may_ask_again_at is not None:
        out["may_ask_again_at"] = clock.rfc3339(found.may_ask_again_at)
    return out


def get_history(
    subject_id: str,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Every ledger entry of the subject, oldest first, with notice hashes and evidence."""
    rt = ctx.runtime
    after = 0 if cursor is None else int_position(cursor, "after")
    with rt.store.read() as conn:
        rt.subjects.get(conn, subject_id)
        sealer = rt.subject_keys.sealer(conn, subject_id)
        entries = ledger.history(conn, subject_id, sealer, after_version=after, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    items = [ledger.entry_out(e) for e in entries]
    next_cursor = encode_cursor({"after": entries[-1].version}) if more else None
    return page(items, next_cursor)


def get_token(subject_id: str, ctx: Ctx) -> dict[str, Any]:
    """A fresh consent token for the subject's current state."""
    with ctx.runtime.store.read() as conn:
        state, token = ctx.runtime.consent.token(conn, subject_id)
    return {"subject_id": subject_id, "version": state.version, **token_out(token)}


def token_out(token: ConsentToken) -> dict[str, Any]:
    return {"token": token.token, "token_expires_at": clock.rfc3339(token.expires_at)}


def purposes_out(purposes: dict[str, PurposeState]) -> dict[str, Any]:
    return {
        key: {
            "state": p.state.value,
            "updated_at": clock.rfc3339(p.updated_at),
            "expires_at": clock.rfc3339(p.expires_at) if p.expires_at else None,
            "source": p.source.value,
            "notice_sha256": p.notice_sha256,
        }
        for key, p in sorted(purposes.items())
    }


def state_out(state: SubjectConsent) -> dict[str, Any]:
    return {
        "subject_id": state.subject_id,
        "version": state.version,
        "jurisdiction": state.jurisdiction or "EU",
        "age_band": state.age_band.value,
        "gpc": state.gpc,
        # CCPA §1798.121: sensitive personal information kept to regs §7027(m) uses.
        "sensitive_limited": state.sensitive_limited,
        "purposes": purposes_out(state.purposes),
    }


def result_out(result: ConsentResult) -> dict[str, Any]:
    return {
        "subject_id": result.state.subject_id,
        "version": result.state.version,
        "purposes": purposes_out(result.state.purposes),
        "gpc_honored": result.gpc_honored,
        **token_out(result.token),
    }


def consent_report(
    ctx: Ctx,
    request: Request,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[State | None, Query()] = None,
    source: Annotated[Source | None, Query()] = None,
    start: Annotated[Instant | None, Query(alias="from")] = None,
    end: Annotated[Instant | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Response:
    """Consent ledger entries by purpose, state, source and time (`from` included, `to` not):
    a page of JSON, or the whole report as CSV by Accept or ?format=csv. Audited."""
    if start is not None and end is not None and start > end:
        raise InvalidWindow("`from` must not be after `to`")
    wanted = report.ReportFilter(
        purpose, state.value if state else None, source.value if source else None, start, end
    )
    store = ctx.runtime.store
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        lines = report.csv_lines(store, wanted, actor=ctx.actor)
        # The audit entry is written before the first byte, so a refused write fails the call.
        first = next(lines)
        return StreamingResponse(
            iterate_in_threadpool(_chain(first, lines)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="consent-report.csv"'},
        )
    after = 0 if cursor is None else int_position(cursor, "after")
    items = report.page(store, wanted, after=after, limit=limit, actor=ctx.actor)
    nxt = encode_cursor({"after": items[-1]["entry_id"]}) if len(items) == limit else None
    return Response(msgspec.json.encode(page(items, nxt)), media_type="application/json")


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
