"""Data-subject requests: creation with deadlines and duplicate detection, verification,
extension, rejection, acknowledgements, decisions, and the overdue scheduler."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.service import ConsentService
from consentry.dsr import awaiting, deadlines, duplicates, limit, rectification, restriction
from consentry.dsr.downstream import Downstream
from consentry.dsr.erasure import Erasure
from consentry.dsr.models import (
    OPEN,
    Level,
    Request,
    RequestType,
    Status,
    Step,
    Verification,
    required_level,
)
from consentry.dsr.records import (
    NewRequest,
    Notes,
    advance,
    insert,
    level_met,
    load,
    raise_required,
    request_of,
    updated,
)
from consentry.errors import (
    DecisionNotPending,
    InvalidRequest,
    InvalidTransition,
    UnexpectedAcknowledgement,
    UnknownPurpose,
    VerificationNotIndependent,
)
from consentry.storage import requests as sql
from consentry.storage.engine import Store
from consentry.subjects.models import Jurisdiction, SubjectRef
from consentry.subjects.resolve import Subjects

# NewRequest is part of this module's interface (handlers, bench); it is stored by records.
__all__ = ["NewRequest", "Requests"]

_OPEN = sorted(s.value for s in OPEN)


# What a limit request did (its result).
_LIMITED = {"sensitive_limited": True}

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

    def _duplicate(
        self,
        conn: Connection,
        new: NewRequest,
        subject_id: str,
        keys: list[str] | None,
        *,
        actor: str,
    ) -> Request | None:
        """An open request of the subject asking the same (dsr/duplicates.py), audited."""
        same = duplicates.find(
            conn,
            self.notes,
            subject_id,
            new.type,
            format=new.format,
            ground=new.ground,
            purposes=keys,
            changes=new.changes,
            scope=new.scope,
        )
        if same is not None:
            audit.record(
                conn,
                AuditAction.REQUEST_DUPLICATE,
                actor=actor,
                subject_id=subject_id,
                details={"request_id": same.request_id, "type": new.type.value},
            )
        return same

    def create(self, new: NewRequest, *, actor: str) -> tuple[Request, bool]:
        """(the request, whether it is an open one of the same subject asking the same,
        returned again: dsr/duplicates.py). Nothing is disclosed nor destroyed before the
        verification level is met."""
        marketing: list[str] = []
        with self.store.write() as conn:
            keys: list[str] | None = None
            if new.type is RequestType.OBJECTION:
                # Only an objection names purposes: other requests leave the registry unread.
                purposes = self.consent.registry.all(conn)
                keys = self._purposes(new, purposes)
                marketing, _ = restriction.split_direct_marketing(keys or [], purposes)
            limits = new.type is RequestType.LIMIT
            # A direct-marketing objection or a limit from someone unknown is a pre-emptive
            # opt-out, as a withdrawal is: the person is recorded. Otherwise nobody is created.
            if marketing or limits:
                subject = self.subjects.resolve(conn, new.ref, actor=actor).subject
            else:
                subject = self.subjects.find(conn, new.ref)  # type: ignore[assignment]
            subject_id = subject.subject_id if subject else None
            # The jurisdiction on record counts too: a request naming another cannot lower
            # the level a Californian's data needs.
            on_record = subject.jurisdiction if subject is not None else None
            jurisdictions = {new.jurisdiction.value} | ({on_record.value} if on_record else set())
            required = required_level(new.type, jurisdictions, new.scope)
            if subject is not None and subject_id is not None:
                self.subjects.settle_jurisdiction(conn, subject, new.jurisdiction, actor=actor)
                # A direct-marketing objection or a limit must take effect on receipt,
                # whatever is open.
                if not marketing and not limits:
                    same = self._duplicate(conn, new, subject_id, keys, actor=actor)
                    if same is not None:
                        # The open one needs what this one would have (a Californian's data
                        # is not disclosed at the level an EU request was received at).
                        same = raise_required(conn, same, None, actor=actor, floor=required)
                        return same, True
            request = insert(
                conn, self.notes, new, subject_id, keys, required=required, actor=actor
            )
            if limits and subject_id is not None:
                limit.limit(conn, subject_id, request_id=request.request_id, actor=actor)
            if marketing and subject_id is not None:
                restriction.object_to(
                    conn, subject_id, marketing, request_id=request.request_id, actor=actor
                )
                restriction.notify_objection(
                    conn,
                    self.downstream,
                    subject_id,
                    marketing,
                    request_id=request.request_id,
                    actor=actor,
                )
            if new.verification is not None and new.verification.level is not Level.NONE:
                request = self._verify(conn, request, new.verification, actor=actor)
            elif marketing and set(marketing) == set(keys or []):
                # Needs no verification: done on receipt, complete once its recipients
                # acknowledge. It waits even when nobody was told (the runner completes it):
                # answering `completed` at once would tell that nobody holds the person's
                # data, which an unverified requester must not learn.
                request = awaiting.finish(
                    conn,
                    self.downstream,
                    request,
                    actor=actor,
                    result={"objected": marketing},
                    wait=True,
                )
            elif limits:
                # Needs no verification (regs §7027(e)): done on receipt. Nothing is sent
                # downstream (API.md has no notice for it: docs/decisions.md).
                request = awaiting.finish(
                    conn, self.downstream, request, actor=actor, result=_LIMITED
                )
        if marketing and subject_id is not None:
            # Consent for it is withdrawn too (API.md, Objection).
            self.consent.withdraw(
                SubjectRef(subject_id=subject_id), marketing, "api", gpc=False, actor=actor
            )
        self.refresh(request.subject_id)
        return request, False

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

    def acks(self, request_id: str) -> list[dict[str, Any]]:
        """Per system the request sent notices to: its latest notice, and when it had
        acknowledged them all."""
        with self.store.read() as conn:
            return self.downstream.acknowledgements(conn, request_id)

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
            request = self._verify(conn, request, verification, actor=actor)
        self.refresh(request.subject_id)
        return request

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
                self.downstream,
                subject_id,
                reason=reason,
                sealer=self.subjects.keys.sealer(conn, subject_id),
                subject_informed_at=subject_informed_at,
                request_id=lifted,
                actor=actor,
            )
        self.refresh(subject_id)
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
                    conn, request.subject_id, [purpose], request_id=request_id, actor=actor
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
                restriction.release(conn, request.subject_id, purpose)
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
        self.refresh(request.subject_id)
        return request

    def mark_overdue(self, *, actor: str) -> int:
        """The scheduler: every open request past its deadline becomes `overdue`."""
        with self.store.write() as conn:
            late = sql.past_due(conn, clock.now(), _OPEN)
            for request_id in late:
                advance(conn, load(conn, request_id), Status.OVERDUE, actor=actor)
        return len(late)

    def _verify(
        self, conn: Connection, request: Request, verification: Verification, *, actor: str
    ) -> Request:
        level = verification.level
        request = self.required_now(conn, request, actor=actor)
        if request.type is RequestType.RECTIFICATION:
            self._independent(conn, request, verification)
        best = max(level, request.verification_level or Level.NONE, key=lambda lv: lv.rank)
        changes = {
            "verification_method": verification.method[:64],
            "verification_level": best.value,
            "updated_at": clock.now(),
        }
        details: dict[str, Any] = {"request_id": request.request_id, "level": level.value}
        if verification.matched is not None:
            details["matched"] = sorted(verification.matched)
        audit.record(
            conn,
            AuditAction.REQUEST_VERIFICATION,
            actor=actor,
            subject_id=request.subject_id,
            details=details,
        )
        met = level_met(updated(request, changes))
        if met and request.verified_at is None and request.step is Step.NOTIFIED:
            # Its own work done unverified (a direct-marketing objection): verification now
            # only shows whom it waits for; its status stays.
            changes["verified_at"] = clock.now()
            sql.update_request(conn, request.request_id, changes)
            return updated(request, changes)
        if request.verified_at is not None or not met:
            sql.update_request(conn, request.request_id, changes)
            return updated(request, changes)
        # The level is met: one write records the verification and the transition.
        request = advance(
            conn,
            request,
            Status.VERIFIED,
            actor=actor,
            values={"verification_method": changes["verification_method"]}
            | {"verification_level": best.value, "verified_at": clock.now()},
        )
        return self._on_verified(conn, request, actor=actor)

    def required_now(self, conn: Connection, request: Request, *, actor: str) -> Request:
        """`request` needing at least what its type needs for its subject's jurisdiction as
        it is now (records.raise_required): checked at verification and at disclosure."""
        if request.subject_id is None or request.required is required_level(
            request.type, {"US-CA"}, request.scope
        ):
            # Already what any jurisdiction could ask of it: nothing to read.
            return request
        jurisdiction = self.subjects.get(conn, request.subject_id).jurisdiction
        where = jurisdiction.value if jurisdiction is not None else None
        return raise_required(conn, request, where, actor=actor)

    def _independent(self, conn: Connection, request: Request, verification: Verification) -> None:
        """Regs §7060(h): a rectification is verified with information other than the value
        it corrects. The verification must say what it matched, and that must not be a type
        of identity the request corrects (a code sent to the old address proves nothing
        about whether the new one is right, and the old one may be the stolen one)."""
        if verification.matched is None:
            raise VerificationNotIndependent(
                "a rectification's verification names what it matched (`matched`)"
            )
        changes = self.notes.read(conn, request.request_id).get("changes", [])
        corrected = sorted({c["type"] for c in changes} & set(verification.matched))
        if corrected:
            raise VerificationNotIndependent(
                "a rectification is verified with information other than the values it "
                f"corrects: {', '.join(corrected)}",
                corrected=",".join(corrected),
            )

    def _on_verified(self, conn: Connection, request: Request, *, actor: str) -> Request:
        """What must happen the moment the level is met; the rest is the runner's."""
        subject_id = request.subject_id
        if subject_id is None:
            # Answering earlier would tell who is a customer (API.md).
            return advance(
                conn,
                request,
                Status.COMPLETED,
                actor=actor,
                step=Step.DONE,
                values={"result": json.dumps({"subject_found": False})},
            )
        if request.type is RequestType.ERASURE:
            retained = self.erasure.shred(
                conn, subject_id, request_id=request.request_id, actor=actor
            )
            return advance(
                conn,
                request,
                Status.IN_PROGRESS,
                actor=actor,
                step=Step.SHREDDED,
                values={"result": json.dumps({"retained": retained})},
            )
        if request.type is RequestType.RECTIFICATION:
            changes = self.notes.read(conn, request.request_id).get("changes", [])
            rectification.check(conn, self.subjects, subject_id, changes)
        if request.type is RequestType.RESTRICTION:
            restriction.restrict(
                conn,
                self.downstream,
                subject_id,
                ground=request.ground,
                request_id=request.request_id,
                actor=actor,
            )
        if request.type in (RequestType.RESTRICTION, RequestType.LIMIT):
            # A limit has held since receipt: a verification given with it only ends it here.
            result = _LIMITED if request.type is RequestType.LIMIT else None
            return awaiting.finish(conn, self.downstream, request, actor=actor, result=result)
        if request.type is RequestType.OBJECTION:
            purposes = self.consent.registry.all(conn)
            marketing, other = restriction.split_direct_marketing(request.purposes or [], purposes)
            if not other:
                return awaiting.finish(
                    conn, self.downstream, request, actor=actor, result={"objected": marketing}
                )
            restriction.hold_pending(
                conn, subject_id, other, request_id=request.request_id, actor=actor
            )
            return advance(
                conn, request, Status.IN_PROGRESS, actor=actor, step=Step.AWAITING_DECISION
            )
        return request

    def _purposes(self, new: NewRequest, purposes: dict[str, Any]) -> list[str]:
        keys = new.purposes if new.purposes is not None else restriction.default_purposes(purposes)
        for key in keys:
            if key not in purposes:
                raise UnknownPurpose(f"no purpose {key!r}", purpose=key)
        if not keys:
            raise InvalidRequest("an objection names at least one purpose")
        return sorted(set(keys))

    def refresh(self, subject_id: str | None) -> None:
        """Put the subject's new state in the consent cache (checks read it)."""
        if subject_id is not None:
            with self.store.read() as conn:
                self.consent.cache.fresh(conn, subject_id)
