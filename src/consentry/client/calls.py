"""A call as data (method, path, body, query of one endpoint of API.md), and the calls of
consent, configuration, events, subjects and requests. The sync and async clients both send
these, so each endpoint's shape is written once; the other resources' calls sit in their own
modules (reads.py, audit.py, datamap.py, keys.py, operations.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from consentry.client.types import Event, NoticeRef, SubjectLike, SubjectRef, Verification

Query = dict[str, str | int]


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    body: Any = None
    query: Query | None = None
    accept: str = "application/json"


def p(segment: str) -> str:
    """One path segment, escaped: an id never turns into a different path. An empty id, `.`
    or `..` (which a URL reads as this folder or its parent, whatever the escaping) is
    refused with ValueError before anything is sent."""
    if segment in ("", ".", ".."):
        raise ValueError(f"{segment!r} is not an id: it would address another path")
    return quote(segment, safe="")


def rfc3339(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("times carry a time zone (API.md: RFC 3339 UTC)")
        return value.isoformat()
    return value


def query_of(**values: Any) -> Query:
    """A query string from keyword values: None left out, `from_` sent as `from`, times as
    RFC 3339."""
    return {
        k.rstrip("_"): (rfc3339(v) if isinstance(v, datetime) else v)
        for k, v in values.items()
        if v is not None
    }


def time_or_none(value: datetime | str | None) -> str | None:
    return None if value is None else rfc3339(value)


def drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def subject_ref(subject: SubjectLike) -> SubjectRef:
    """A subject reference from a reference or a bare subject id."""
    if isinstance(subject, str):
        return {"subject_id": subject}
    return subject


def identity(type_: str, value: str) -> SubjectRef:
    """A reference by one identity: `identity("email", "ana@example.com")`."""
    return {"identities": [{"type": type_, "value": value}]}


# Consent


def grant(
    subject: SubjectLike,
    purposes: Mapping[str, str] | Iterable[str],
    *,
    notice: NoticeRef | tuple[str, str] | None,
    jurisdiction: str | None,
    source: str,
    tcf: str | None,
    gpc: bool | None,
    explicit: bool | None,
    age_band: str | None,
    evidence: Mapping[str, Any] | None,
) -> Call:
    states = dict(purposes) if isinstance(purposes, Mapping) else dict.fromkeys(purposes, "granted")
    if isinstance(notice, tuple):
        notice = {"id": notice[0], "version": notice[1]}
    body = {"subject": subject_ref(subject), "purposes": states, "source": source}
    body |= drop_none(
        notice=notice,
        jurisdiction=jurisdiction,
        tcf=tcf,
        gpc=gpc,
        explicit=explicit,
        age_band=age_band,
        evidence=evidence,
    )
    return Call("POST", "/v1/consents", body)


def withdraw(
    subject: SubjectLike, purposes: Sequence[str] | Literal["all"], *, source: str
) -> Call:
    which: list[str] | str = purposes if purposes == "all" else list(purposes)
    body = {"subject": subject_ref(subject), "purposes": which, "source": source}
    return Call("POST", "/v1/consents/withdraw", body)


def check(subject: SubjectLike, purpose: str) -> Call:
    return Call("POST", "/v1/consents/check", {"subject": subject_ref(subject), "purpose": purpose})


def consent_state(subject_id: str) -> Call:
    return Call("GET", f"/v1/subjects/{p(subject_id)}/consent")


def consent_history(subject_id: str, *, limit: int | None, cursor: str | None) -> Call:
    path = f"/v1/subjects/{p(subject_id)}/consent/history"
    return Call("GET", path, query=query_of(limit=limit, cursor=cursor))


def consent_token(subject_id: str) -> Call:
    return Call("GET", f"/v1/subjects/{p(subject_id)}/consent/token")


def compliance(subject_id: str) -> Call:
    return Call("GET", f"/v1/subjects/{p(subject_id)}/compliance")


# Purposes, notices, schemas


def list_purposes() -> Call:
    return Call("GET", "/v1/purposes")


def get_purpose(key: str) -> Call:
    return Call("GET", f"/v1/purposes/{p(key)}")


def put_purpose(key: str, definition: Mapping[str, Any]) -> Call:
    return Call("PUT", f"/v1/purposes/{p(key)}", dict(definition))


def put_notice(notice_id: str, *, version: str, text: str, purposes: Sequence[str]) -> Call:
    body = {"version": version, "text": text, "purposes": list(purposes)}
    return Call("PUT", f"/v1/notices/{p(notice_id)}", body)


def list_schemas() -> Call:
    return Call("GET", "/v1/schemas")


def get_schema(event_type: str) -> Call:
    return Call("GET", f"/v1/schemas/{p(event_type)}")


def put_schema(
    event_type: str, *, purposes: Sequence[str], fields: Mapping[str, Mapping[str, Any]]
) -> Call:
    body = {"purposes": list(purposes), "fields": {k: dict(v) for k, v in fields.items()}}
    return Call("PUT", f"/v1/schemas/{p(event_type)}", body)


# Events


def send_events(events: Sequence[Event], *, gpc: bool = False) -> Call:
    body: dict[str, Any] = {"events": [dict(e) for e in events]}
    if gpc:
        body["gpc"] = True
    return Call("POST", "/v1/events", body)


def list_events(
    purpose: str,
    *,
    event_type: str | None,
    from_: datetime | str | None,
    to: datetime | str | None,
    limit: int | None,
    cursor: str | None,
) -> Call:
    query = query_of(
        purpose=purpose, event_type=event_type, from_=from_, to=to, limit=limit, cursor=cursor
    )
    return Call("GET", "/v1/events", query=query)


# Subjects and the portal


def resolve_subject(subject: SubjectLike, *, jurisdiction: str | None) -> Call:
    body = {"subject": subject_ref(subject)} | drop_none(jurisdiction=jurisdiction)
    return Call("POST", "/v1/subjects", body)


def get_subject(subject_id: str) -> Call:
    return Call("GET", f"/v1/subjects/{p(subject_id)}")


def portal_link(subject: SubjectLike, *, verification: Verification | None) -> Call:
    body = {"subject": subject_ref(subject)} | drop_none(verification=verification)
    return Call("POST", "/v1/portal-links", body)


# Data-subject requests


def create_request(
    type_: str,
    subject: SubjectLike,
    *,
    jurisdiction: str,
    options: Mapping[str, Any],
) -> Call:
    body = {"type": type_, "subject": subject_ref(subject), "jurisdiction": jurisdiction}
    body |= drop_none(**options)
    return Call("POST", "/v1/requests", body)


def get_request(request_id: str) -> Call:
    return Call("GET", f"/v1/requests/{p(request_id)}")


def list_requests(*, status: str | None, limit: int | None, cursor: str | None) -> Call:
    return Call("GET", "/v1/requests", query=query_of(status=status, limit=limit, cursor=cursor))


def _on_request(request_id: str, action: str, body: Mapping[str, Any]) -> Call:
    return Call("POST", f"/v1/requests/{p(request_id)}/{action}", dict(body))


def verify_request(request_id: str, verification: Verification) -> Call:
    return _on_request(request_id, "verify", verification)


def extend_request(
    request_id: str,
    *,
    months: int | None,
    days: int | None,
    reason: str,
    subject_notified_at: datetime | str,
) -> Call:
    body = drop_none(months=months, days=days)
    body |= {"reason": reason, "subject_notified_at": rfc3339(subject_notified_at)}
    return _on_request(request_id, "extend", body)


def reject_request(request_id: str, reason: str) -> Call:
    return _on_request(request_id, "reject", {"reason": reason})


def acknowledge_request(request_id: str, system_id: str) -> Call:
    return _on_request(request_id, "acks", {"system_id": system_id})


def decide_objection(request_id: str, *, purpose: str, outcome: str, grounds: str) -> Call:
    body = {"purpose": purpose, "outcome": outcome, "grounds": grounds}
    return _on_request(request_id, "decision", body)


def request_result(request_id: str, *, csv: bool = False) -> Call:
    accept = "text/csv" if csv else "application/json"
    return Call("GET", f"/v1/requests/{p(request_id)}/result", accept=accept)


def lift_restriction(subject_id: str, *, reason: str, subject_informed_at: datetime | str) -> Call:
    body = {"reason": reason, "subject_informed_at": rfc3339(subject_informed_at)}
    return Call("DELETE", f"/v1/subjects/{p(subject_id)}/restriction", body)
