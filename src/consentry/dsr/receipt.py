"""Receipt of a data-subject request: the subject found (or recorded, for an opt-out that
takes effect on receipt), the level it needs, an open one asking the same returned again
(dsr/duplicates.py), and what takes effect on receipt (a direct-marketing objection, a
limit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import marks
from consentry.consent.service import ConsentService
from consentry.dsr import awaiting, duplicates, limit, restriction
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import Level, Request, RequestType, required_level
from consentry.dsr.records import NewRequest, Notes, insert, raise_required
from consentry.dsr.verification import LIMITED, Verifier
from consentry.errors import InvalidRequest, UnknownPurpose
from consentry.storage.engine import Store
from consentry.subjects.models import Jurisdiction, Subject, SubjectRef
from consentry.subjects.resolve import Subjects


class Receipt:
    """Creates requests; nothing is disclosed nor destroyed before the verification level is
    met."""

    def __init__(
        self,
        store: Store,
        subjects: Subjects,
        consent: ConsentService,
        downstream: Downstream,
        notes: Notes,
        verifier: Verifier,
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.consent = consent
        self.downstream = downstream
        self.notes = notes
        self.verifier = verifier

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

    def _settle(
        self, conn: Connection, subject: Subject, jurisdiction: Jurisdiction, *, actor: str
    ) -> None:
        """The subject under the request's jurisdiction; a change gives the subject a new
        consent version (decisions depend on it), cached once the transaction commits."""
        settled = self.subjects.settle_jurisdiction(conn, subject, jurisdiction, actor=actor)
        if settled.jurisdiction != subject.jurisdiction:
            marks.touched(conn, self.consent, subject.subject_id)

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
                self._settle(conn, subject, new.jurisdiction, actor=actor)
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
                limit.limit(
                    conn, self.consent, subject_id, request_id=request.request_id, actor=actor
                )
            if marketing and subject_id is not None:
                restriction.object_to(
                    conn,
                    self.consent,
                    subject_id,
                    marketing,
                    request_id=request.request_id,
                    actor=actor,
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
                request = self.verifier.verify(conn, request, new.verification, actor=actor)
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
                    conn, self.downstream, request, actor=actor, result=LIMITED
                )
        if marketing and subject_id is not None:
            # Consent for it is withdrawn too (API.md, Objection).
            self.consent.withdraw(
                SubjectRef(subject_id=subject_id), marketing, "api", gpc=False, actor=actor
            )
        return request, False

    def _purposes(self, new: NewRequest, purposes: dict[str, Any]) -> list[str]:
        keys = new.purposes if new.purposes is not None else restriction.default_purposes(purposes)
        for key in keys:
            if key not in purposes:
                raise UnknownPurpose(f"no purpose {key!r}", purpose=key)
        if not keys:
            raise InvalidRequest("an objection names at least one purpose")
        return sorted(set(keys))
