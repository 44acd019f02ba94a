"""Data-subject requests: the lifecycle's entry points (receipt in dsr/receipt.py, verification
in dsr/verification.py), extension, rejection, acknowledgements, decisions, the reads of a
request, and the overdue scheduler."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.service import ConsentService
from consentry.dsr import awaiting, deadlines, restriction
from consentry.dsr.downstream import Downstream
from consentry.dsr.erasure import Erasure
from consentry.dsr.models import OPEN, Request, RequestType, Status, Step, Verification
from consentry.dsr.receipt import Receipt
from consentry.dsr.records import NewRequest, Notes, advance, load, request_of
from consentry.dsr.verification import Verifier
from consentry.errors import DecisionNotPending, InvalidTransition, UnexpectedAcknowledgement
from consentry.storage import requests as sql
from consentry.storage.engine import Store
from consentry.subjects.models import Jurisdiction
from consentry.subjects.resolve import Subjects

# NewRequest is part of this module's interface (handlers, bench); it is stored by records.
__all__ = ["NewRequest", "Requests"]

_OPEN = sorted(s.value for s in OPEN)

# Requests whose verification changes the subject's data at once.
_TAKES_EFFECT = frozenset({RequestType.ERASURE, RequestType.RESTRICTION, RequestType.OBJECTION})


class Requests:
    """The request lifecycle over the store; effects that must be immediate (erasure's
    shredding, a restriction, a direct-marketing objection) happen inside the call."""

    def __init__(
        self,
        store: Store,
        subjects: Subjects,
        consent: ConsentService,
        downstream: Downstream,
        erasure: Erasure,
        notes: Notes,
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.consent = consent
        self.downstream = downstream
        self.erasure = erasure
        self.notes = notes
        self.verifier = Verifier(subjects, consent, downstream, erasure, notes)
        self.receipt = Receipt(store, subjects, consent, downstream, notes, self.verifier)

    def create(self, new: NewRequest, *, actor: str) -> tuple[Request, bool]:
        """(the request, whether it is an open one of the same subject asking the same,
        returned again: dsr/duplicates.py). Nothing is disclosed nor destroyed before the
        verification level is met (dsr/receipt.py)."""
        return self.receipt.create(new, actor=actor)

    def get(self, request_id: str) -> Request:
        with self.store.read() as conn:
            return load(conn, request_id)

    def listing(
        self, *, status: str | None, after: str | None, limit: int
    ) -> tuple[list[Request], dict[str, dict[str, Any]]]:
        """A page of requests, and the authorised agents of those an agent made, opened from
        the same rows (one query for the page)."""
        with self.store.read() as conn:
            rows = sql.list_requests(conn, status=status, after=after, limit=limit)
        agents = {
            str(r.request_id): self.notes.open_agent(str(r.request_id), bytes(r.agent_ct))
            for r in rows
            if r.agent_ct is not None
        }
        return [request_of(r) for r in rows], agents

    def of_subject(self, subject_id: str) -> list[Request]:
        """The subject's requests, the oldest first (the portal lists them)."""
        with self.store.read() as conn:
            rows = sql.subject_requests(conn, subject_id)
        return [request_of(r) for r in rows]

    def backlog(self, limit: int) -> list[Request]:
        """Open requests, the nearest deadline first, at most `limit`."""
        with self.store.read() as conn:
            rows = sql.backlog(conn, _OPEN, limit)
        return [request_of(r) for r in rows]

    def acks(self, request_id: str) -> list[dict[str, Any]]:
        """Per system the request sent notices to: its latest notice, and when it had
        acknowledged them all."""
        with self.store.read() as conn:
            return self.downstream.acknowledgements(conn, request_id)

    def unanswered(self, request_ids: Sequence[str]) -> dict[str, list[str]]:
        """Per request of `request_ids`, the systems that have not acknowledged all of its
        notices (an operator may acknowledge for them), in one read."""
        with self.store.read() as conn:
            return {
                request_id: [
                    a["system_id"]
                    for a in self.downstream.acknowledgements(conn, request_id)
                    if a["acknowledged_at"] is None
                ]
                for request_id in request_ids
            }

    def topics(self, request_id: str) -> list[dict[str, Any]]:
        """What the request waits or waited for on the stream mode's consented topics (an
        erasure: the subject's records there past the topic's retention), by topic."""
        with self.store.read() as conn:
            return awaiting.topics_of(conn, request_id, clock.now())

    def topics_waiting(self, request_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Per request of `request_ids`, the consented topics it still waits for (`topic`,
        `until`), in one read."""
        now = clock.now()
        with self.store.read() as conn:
            return {
                request_id: [t for t in awaiting.topics_of(conn, request_id, now) if t["waiting"]]
                for request_id in request_ids
            }

    def agent_of(self, request_id: str) -> dict[str, Any] | None:
        """The authorised agent who made the request, with the proof given, or None."""
        with self.store.read() as conn:
            return self.notes.agent(conn, request_id)

    def reason_text(self, request: Request) -> str | None:
        if request.reason is None:
            return None
        with self.store.read() as conn:
            return str(self.notes.read(conn, request.request_id).get("reason") or request.reason)

    def verify(self, request_id: str, verification: Verification, *, actor: str) -> Request:
        with self.store.write() as conn:
            request = load(conn, request_id, lock=True)
            if not request.is_open:
                raise InvalidTransition(f"a request {request.status.value} takes no verification")
            return self.verifier.verify(conn, request, verification, actor=actor)

    def extend(
        self,
        request_id: str,
        *,
        months: int | None,
        days: int | None,
        reason: str,
        subject_notified_at: datetime,
        actor: str,
    ) -> Request:
        """Once, before due_at, within the legal limit (deadlines.extended); the reason is
        sealed with the request, the audit entry says when the subject was told."""
        with self.store.write() as conn:
            request = load(conn, request_id, lock=True)
            if not request.is_open:
                raise InvalidTransition(f"a request {request.status.value} has no deadline left")
            due = deadlines.extended(
                Jurisdiction(request.jurisdiction),
                request.due_at,
                clock.now(),
                months=months,
                days=days,
                already=request.extended_at is not None,
            )
            now = clock.now()
            values: dict[str, Any] = {"due_at": due, "extended_at": now, "updated_at": now}
            if request.status is Status.OVERDUE:
                raise InvalidTransition("an overdue request cannot be extended")
            sql.update_request(conn, request_id, values)
            self.notes.add(conn, request_id, extension_reason=reason)
            audit.record(
                conn,
                AuditAction.REQUEST_EXTENDED,
                actor=actor,
                subject_id=request.subject_id,
                details={
                    "request_id": request_id,
                    "due_at": clock.rfc3339(due),
                    "months": months,
                    "days": days,
                    "subject_notified_at": clock.rfc3339(subject_notified_at),
                },
            )
            return load(conn, request_id)

    def reject(self, request_id: str, reason: str, *, actor: str) -> Request:
        """Art. 12(4): a refusal always says why (the text is sealed with the request). A
        verified erasure, restriction or objection has taken effect: it is finished, not
        refused (a rejected erasure would leave its subject half erased)."""
        with self.store.write() as conn:
            request = load(conn, request_id, lock=True)
            if request.verified_at is not None and request.type in _TAKES_EFFECT:
                raise InvalidTransition(
                    f"a verified {request.type.value} request has taken effect and cannot be "
                    "rejected",
                    status=request.status.value,
                )
            self.notes.add(conn, request_id, reason=reason)
            return advance(
                conn,
                request,
                Status.REJECTED,
                actor=actor,
                step=Step.DONE,
                values={"reason": "operator"},
            )

    def acknowledge(self, request_id: str, system_id: str, *, actor: str, via: str) -> Request:
        """An operator's acknowledgement of the request's notices to `system_id` (also those
        sent after the request ended: a restriction's lifting)."""
        with self.store.write() as conn:
            request = load(conn, request_id, lock=True)
            # Its notices are the one record: answered, they no longer count as overdue and
            # the request no longer waits for them. None left: nothing is owed.
            if not self.downstream.acknowledge(conn, request_id, system_id, actor=actor):
                raise UnexpectedAcknowledgement(
                    f"system {system_id} owes request {request_id} no acknowledgement",
                    system_id=system_id,
                )
            audit.record(
                conn,
                AuditAction.REQUEST_ACKNOWLEDGED,
                actor=actor,
                subject_id=request.subject_id,
                details={"request_id": request_id, "system_id": system_id, "via": via},
            )
            return awaiting.complete_if_acknowledged(conn, self.downstream, request, actor=actor)

    def notices(self, request_id: str) -> list[dict[str, Any]]:
        """The rights notices the request sent, each with its state."""
        with self.store.read() as conn:
            return self.downstream.notices_of(conn, request_id)

    def lift_restriction(
        self, subject_id: str, *, reason: str, subject_informed_at: str, actor: str
    ) -> tuple[str | None, list[str]]:
        """Art. 18(3): (the restriction request lifted, the systems told)."""
        with self.store.write() as conn:
            self.subjects.get(conn, subject_id)
            lifted = None
            for row in sql.subject_requests(conn, subject_id):
                if row.type == RequestType.RESTRICTION.value and row.verified_at is not None:
                    lifted = str(row.request_id)
            if lifted is not None:
                # Held until the lifting's notices are written: the runner cannot complete
                # the request meanwhile, without waiting for them.
                load(conn, lifted, lock=True)
            systems = restriction.lift(
                conn,
                self.consent,
                self.downstream,
                subject_id,
                reason=reason,
                sealer=self.subjects.keys.sealer(conn, subject_id),
                subject_informed_at=subject_informed_at,
                request_id=lifted,
                actor=actor,
            )
        return lifted, systems

    def decide(
        self, request_id: str, purpose: str, outcome: str, grounds: str, *, actor: str
    ) -> Request:
        """An operator's decision on an objection to one purpose: upheld -> objected,
        overridden -> the purpose is released; the request completes with its last one."""
        with self.store.write() as conn:
            request = load(conn, request_id, lock=True)
            _, other = restriction.split_direct_marketing(
                request.purposes or [], self.consent.registry.all(conn)
            )
            pending = set(other)
            decided = self.notes.read(conn, request_id).get("decisions", {})
            if (
                request.type is not RequestType.OBJECTION
                or request.step is not Step.AWAITING_DECISION
                or request.subject_id is None
                or purpose not in pending - set(decided)
            ):
                raise DecisionNotPending(f"no objection to {purpose!r} awaits a decision here")
            if outcome == "upheld":
                restriction.object_to(
                    conn,
                    self.consent,
                    request.subject_id,
                    [purpose],
                    request_id=request_id,
                    actor=actor,
                )
                restriction.notify_objection(
                    conn,
                    self.downstream,
                    request.subject_id,
                    [purpose],
                    request_id=request_id,
                    actor=actor,
                )
            else:
                restriction.release(conn, self.consent, request.subject_id, purpose)
            decided[purpose] = outcome
            self.notes.add(conn, request_id, decisions=decided, **{f"grounds:{purpose}": grounds})
            audit.record(
                conn,
                AuditAction.REQUEST_DECISION,
                actor=actor,
                subject_id=request.subject_id,
                details={"request_id": request_id, "purpose": purpose, "outcome": outcome},
            )
            if pending <= set(decided):
                request = awaiting.finish(
                    conn, self.downstream, request, actor=actor, result={"decisions": decided}
                )
            else:
                request = load(conn, request_id)
        return request

    def mark_overdue(self, *, actor: str) -> int:
        """The scheduler: every open request past its deadline becomes `overdue`, once: each is
        read again under its row lock, so a request another process marked (or ended, or
        extended) meanwhile is left alone. Returns how many this call marked."""
        marked = 0
        with self.store.write() as conn:
            now = clock.now()
            for request_id in sql.past_due(conn, now, _OPEN):
                request = load(conn, request_id, lock=True)
                if request.status is Status.OVERDUE or request.status not in OPEN:
                    continue
                if request.due_at >= now:
                    continue
                advance(conn, request, Status.OVERDUE, actor=actor)
                marked += 1
        return marked

    def required_now(self, conn: Connection, request: Request, *, actor: str) -> Request:
        """`request` needing at least what its type needs for its subject's jurisdiction as
        it is now (records.raise_required): checked at verification and at disclosure."""
        return self.verifier.required_now(conn, request, actor=actor)
