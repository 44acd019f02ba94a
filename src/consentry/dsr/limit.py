"""A request to limit the use of sensitive personal information (CCPA §1798.121): a mark on
the subject that consent/policy.py reads, so ingest, reads and deliveries keep those fields
to the uses regs §7027(m) allows."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import marks
from consentry.consent.service import ConsentService
from consentry.errors import SubjectNotFound
from consentry.storage import subjects as sql


def limit(
    conn: Connection, consent: ConsentService, subject_id: str, *, request_id: str, actor: str
) -> None:
    """The limit holds from this transaction's commit: the subject's consent version moves
    with it, so every cache and every batch in flight decides again (DESIGN.md)."""
    if sql.get_subject(conn, subject_id, lock=True) is None:
        raise SubjectNotFound(f"no subject {subject_id}", subject_id=subject_id)
    marks.sensitive_limited(conn, consent, subject_id)
    audit.record(
        conn,
        AuditAction.SUBJECT_SENSITIVE_LIMITED,
        actor=actor,
        subject_id=subject_id,
        details={"request_id": request_id},
    )
