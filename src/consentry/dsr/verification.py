"""Verification of a data-subject request: the level its type and its subject's jurisdiction
need, the independence a rectification's needs, and what must happen the moment it is met
(erasure's shredding, a restriction, an objection held for a decision)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.service import ConsentService
from consentry.dsr import awaiting, rectification, restriction
from consentry.dsr.downstream import Downstream
from consentry.dsr.erasure import Erasure
from consentry.dsr.models import (
    Level,
    Request,
    RequestType,
    Status,
    Step,
    Verification,
    required_level,
)
from consentry.dsr.records import Notes, advance, level_met, raise_required, updated
from consentry.errors import VerificationNotIndependent
from consentry.storage import requests as sql
from consentry.subjects.resolve import Subjects

# What a limit request did (its result).
LIMITED = {"sensitive_limited": True}


class Verifier:
    """Records verifications; effects that must be immediate happen inside the call."""

    def __init__(
        self,
        subjects: Subjects,
        consent: ConsentService,
        downstream: Downstream,
        erasure: Erasure,
        notes: Notes,
    ) -> None:
        self.subjects = subjects
        self.consent = consent
        self.downstream = downstream
        self.erasure = erasure
        self.notes = notes

    def verify(
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
                self.consent,
                self.downstream,
                subject_id,
                ground=request.ground,
                request_id=request.request_id,
                actor=actor,
            )
        if request.type in (RequestType.RESTRICTION, RequestType.LIMIT):
            # A limit has held since receipt: a verification given with it only ends it here.
            result = LIMITED if request.type is RequestType.LIMIT else None
            return awaiting.finish(conn, self.downstream, request, actor=actor, result=result)
        if request.type is RequestType.OBJECTION:
            purposes = self.consent.registry.all(conn)
            marketing, other = restriction.split_direct_marketing(request.purposes or [], purposes)
            if not other:
                return awaiting.finish(
                    conn, self.downstream, request, actor=actor, result={"objected": marketing}
                )
            restriction.hold_pending(
                conn, self.consent, subject_id, other, request_id=request.request_id, actor=actor
            )
            return advance(
                conn, request, Status.IN_PROGRESS, actor=actor, step=Step.AWAITING_DECISION
            )
        return request
