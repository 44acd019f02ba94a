"""Stored requests: new ones with their deadlines, rows to Request objects, sealed notes,
the audit of each transition."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr import deadlines
from consentry.dsr.models import (
    FINAL,
    TRANSITIONS,
    Level,
    Request,
    RequestType,
    Scope,
    Status,
    Step,
    Verification,
    required_level,
)
from consentry.errors import InvalidTransition, RequestNotFound
from consentry.keys.envelope import Sealer
from consentry.storage import requests as sql
from consentry.storage.engine import AnyRow
from consentry.subjects.models import Jurisdiction, SubjectRef

_STATUS_ACTIONS = {
    Status.VERIFIED: AuditAction.REQUEST_VERIFIED,
    Status.IN_PROGRESS: AuditAction.REQUEST_STEP,
    Status.AWAITING_DOWNSTREAM: AuditAction.REQUEST_AWAITING_DOWNSTREAM,
    Status.COMPLETED: AuditAction.REQUEST_COMPLETED,
    Status.REJECTED: AuditAction.REQUEST_REJECTED,
    Status.FAILED: AuditAction.REQUEST_FAILED,
    Status.OVERDUE: AuditAction.REQUEST_OVERDUE,
}


def request_of(row: AnyRow) -> Request:
    return Request(
        request_id=row.request_id,
        type=RequestType(row.type),
        status=Status(row.status),
        subject_id=row.subject_id,
        jurisdiction=row.jurisdiction,
        format=row.format,
        purposes=json.loads(row.purposes) if row.purposes else None,
        ground=row.ground,
        verification_method=row.verification_method,
        verification_level=Level(row.verification_level) if row.verification_level else None,
        scope=Scope(row.scope) if row.scope else None,
        # Rows made before the level was fixed at receipt: the rule by type and jurisdiction.
        required=Level(row.required_level)
        if row.required_level
        else required_level(RequestType(row.type), [row.jurisdiction]),
        received_at=row.received_at,
        due_at=row.due_at,
        acknowledge_by=row.acknowledge_by,
        extended_at=row.extended_at,
        verified_at=row.verified_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        step=Step(row.step),
        reason=row.reason,
        result=json.loads(row.result) if row.result else None,
        has_agent=row.agent_ct is not None,
    )


def load(conn: Connection, request_id: str, *, lock: bool = False) -> Request:
    row = sql.get_request(conn, request_id, lock=lock) if len(request_id) <= 40 else None
    if row is None:
        raise RequestNotFound(f"no request {request_id}", request_id=request_id)
    return request_of(row)


class Notes:
    """Free text and new identity values of requests, sealed under a named secret and bound
    to their request (never in clear on disk, never in the audit log)."""

    def __init__(self, key: bytes) -> None:
        self._sealer = Sealer(key)

    def read(self, conn: Connection, request_id: str) -> dict[str, Any]:
        row = sql.get_request(conn, request_id)
        if row is None or row.notes_ct is None:
            return {}
        return dict(json.loads(self._sealer.open(bytes(row.notes_ct), _aad(request_id))))

    def add(self, conn: Connection, request_id: str, **values: Any) -> None:
        notes = self.read(conn, request_id) | values
        sealed = self._sealer.seal(json.dumps(notes, sort_keys=True).encode(), _aad(request_id))
        sql.update_request(conn, request_id, {"notes_ct": sealed})

    def seal_agent(self, request_id: str, agent: dict[str, Any]) -> bytes:
        """An authorised agent's name and proof, sealed for the request's `agent_ct`."""
        return self._sealer.seal(json.dumps(agent, sort_keys=True).encode(), _agent_aad(request_id))

    def agent(self, conn: Connection, request_id: str) -> dict[str, Any] | None:
        row = sql.get_request(conn, request_id)
        if row is None or row.agent_ct is None:
            return None
        return self.open_agent(request_id, bytes(row.agent_ct))

    def open_agent(self, request_id: str, sealed: bytes) -> dict[str, Any]:
        """The agent sealed in a request row's `agent_ct` (read with the row: no query)."""
        return dict(json.loads(self._sealer.open(sealed, _agent_aad(request_id))))


def advance(
    conn: Connection,
    request: Request,
    target: Status,
    *,
    actor: str,
    step: Step | None = None,
    details: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Request:
    """Move `request` to `target` if the transition table allows it (InvalidTransition
    otherwise), with the step reached, audited. An overdue request stays `overdue` until it
    ends: its work goes on, the missed deadline stays visible."""
    status = target
    if request.status is Status.OVERDUE and target not in FINAL:
        status = Status.OVERDUE
    elif target is not request.status and target not in TRANSITIONS[request.status]:
        raise InvalidTransition(
            f"a request {request.status.value} cannot become {target.value}",
            status=request.status.value,
        )
    now = clock.now()
    changes: dict[str, Any] = {"status": status.value, "updated_at": now}
    if step is not None:
        changes["step"] = step.value
    if status is Status.COMPLETED or target in FINAL:
        changes["completed_at"] = now
    changes.update(values or {})
    sql.update_request(conn, request.request_id, changes)
    action = _STATUS_ACTIONS.get(target, AuditAction.REQUEST_STEP)
    if target is Status.IN_PROGRESS or target is request.status:
        action = AuditAction.REQUEST_STEP
    audit.record(
        conn,
        action,
        actor=actor,
        subject_id=request.subject_id,
        details={
            "request_id": request.request_id,
            "type": request.type.value,
            "status": status.value,
            "step": (step or request.step).value,
        }
        | (details or {}),
    )
    return updated(request, changes)


def raise_required(
    conn: Connection,
    request: Request,
    jurisdiction: str | None,
    *,
    actor: str,
    floor: Level = Level.NONE,
) -> Request:
    """`request` with its stored level raised, when lower, to `floor` and to what its type
    needs for a subject under `jurisdiction` as it is now (the subject's on record): a
    subject who became US-CA after receipt is not disclosed at the level fixed then. Audited."""
    needed = required_level(request.type, {jurisdiction} if jurisdiction else set(), request.scope)
    level = max(request.required, needed, floor, key=lambda lv: lv.rank)
    if level is request.required:
        return request
    now = clock.now()
    sql.update_request(conn, request.request_id, {"required_level": level.value, "updated_at": now})
    audit.record(
        conn,
        AuditAction.REQUEST_LEVEL_RAISED,
        actor=actor,
        subject_id=request.subject_id,
        details={
            "request_id": request.request_id,
            "from": request.required.value,
            "required_level": level.value,
        },
    )
    return dataclasses.replace(request, required=level, updated_at=now)


def level_met(request: Request) -> bool:
    """Whether the request's verification reaches the level it needs."""
    return (request.verification_level or Level.NONE).rank >= request.required.rank


def updated(request: Request, changes: dict[str, Any]) -> Request:
    """`request` with the columns just written to its row (no read back: callers hold the
    request as read in the same transaction, and the row changes only by these columns)."""
    fields: dict[str, Any] = {}
    for column, value in changes.items():
        if column in _DECODE:
            fields[column] = _DECODE[column](value) if value is not None else None
        elif column in _FIELDS:
            fields[column] = value
    return dataclasses.replace(request, **fields)


_FIELDS = frozenset(f.name for f in dataclasses.fields(Request))
_DECODE: dict[str, Any] = {
    "status": Status,
    "step": Step,
    "type": RequestType,
    "verification_level": Level,
    "scope": Scope,
    "required_level": Level,
    "purposes": json.loads,
    "result": json.loads,
}


@dataclass(frozen=True, slots=True)
class NewRequest:
    type: RequestType
    ref: SubjectRef
    jurisdiction: Jurisdiction
    format: str | None = None
    verification: Verification | None = None
    changes: list[dict[str, str]] = field(default_factory=list)
    purposes: list[str] | None = None
    ground: str | None = None
    scope: Scope | None = None
    # An authorised agent (regs §7063): {"name", "proof": {"kind", "reference", "sha256"?}}.
    agent: dict[str, Any] | None = None


# What new_request_id makes: a cursor or path naming anything else is not one of ours.
REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def insert(
    conn: Connection,
    notes: Notes,
    new: NewRequest,
    subject_id: str | None,
    keys: list[str] | None,
    *,
    required: Level,
    actor: str,
) -> Request:
    """Store a new request, `received`, with its deadlines and the level it needs; a
    rectification's changes go into its sealed notes, an agent's name and proof into
    `agent_ct`. Audited without either."""
    now = clock.now()
    request_id = new_request_id()
    row: dict[str, Any] = {
        "request_id": request_id,
        "type": new.type.value,
        "status": Status.RECEIVED.value,
        "subject_id": subject_id,
        "jurisdiction": new.jurisdiction.value,
        "format": new.format,
        "purposes": json.dumps(keys) if keys is not None else None,
        "ground": new.ground,
        "scope": new.scope.value if new.scope else None,
        "required_level": required.value,
        "agent_ct": notes.seal_agent(request_id, new.agent) if new.agent else None,
        "received_at": now,
        "due_at": deadlines.due_at(new.jurisdiction, now),
        "acknowledge_by": deadlines.acknowledge_by(new.jurisdiction, now),
        "updated_at": now,
        "step": Step.NEW.value,
    }
    sql.insert_request(conn, row)
    if new.changes:
        notes.add(conn, request_id, changes=new.changes)
    audit.record(
        conn,
        AuditAction.REQUEST_RECEIVED,
        actor=actor,
        subject_id=subject_id,
        details={
            "request_id": request_id,
            "type": new.type.value,
            "jurisdiction": new.jurisdiction.value,
            "required_level": required.value,
        }
        | ({"scope": new.scope.value} if new.scope else {})
        | ({"agent": _agent_audit(new.agent)} if new.agent else {}),
    )
    return Request(
        request_id=request_id,
        type=new.type,
        status=Status.RECEIVED,
        subject_id=subject_id,
        jurisdiction=new.jurisdiction.value,
        format=new.format,
        purposes=keys,
        ground=new.ground,
        verification_method=None,
        verification_level=None,
        scope=new.scope,
        required=required,
        received_at=now,
        due_at=row["due_at"],
        acknowledge_by=row["acknowledge_by"],
        extended_at=None,
        verified_at=None,
        completed_at=None,
        updated_at=now,
        step=Step.NEW,
        reason=None,
        result=None,
        has_agent=new.agent is not None,
    )


def _agent_audit(agent: dict[str, Any]) -> dict[str, Any]:
    """What the audit log says of an agent: the kind of proof and the proof document's
    digest when given; never the agent's name or the proof's reference (personal data)."""
    proof = agent["proof"]
    return {"proof_kind": proof["kind"], "proof_sha256": proof.get("sha256")}


def _aad(request_id: str) -> bytes:
    return b"consentry:request-notes:" + request_id.encode()


def _agent_aad(request_id: str) -> bytes:
    return b"consentry:request-agent:" + request_id.encode()
