"""Restriction (Art. 18) and objection (Art. 21): marks on the subject that consent decisions
read (consent/policy.py), and the notices recipients get (Art. 19)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import marks
from consentry.consent.models import LegalBasis, Purpose
from consentry.consent.service import ConsentService
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import NoticeKind
from consentry.errors import NotRestricted, SubjectNotFound
from consentry.keys.envelope import Sealer
from consentry.storage import subjects as sql
from consentry.storage.engine import AnyRow

# Art. 21(1): the purposes an objection covers when it names none.
OBJECTABLE = frozenset({LegalBasis.LEGITIMATE_INTEREST, LegalBasis.PUBLIC_TASK})


def default_purposes(purposes: dict[str, Purpose]) -> list[str]:
    return sorted(k for k, p in purposes.items() if p.legal_basis in OBJECTABLE)


def split_direct_marketing(
    keys: Iterable[str], purposes: dict[str, Purpose]
) -> tuple[list[str], list[str]]:
    """(direct-marketing purposes: effective on receipt, absolute; the others)."""
    chosen = sorted(set(keys))
    marketing = [k for k in chosen if purposes[k].direct_marketing]
    return marketing, [k for k in chosen if k not in marketing]


def restrict(
    conn: Connection,
    consent: ConsentService,
    downstream: Downstream,
    subject_id: str,
    *,
    ground: str | None,
    request_id: str,
    actor: str,
) -> list[str]:
    """Only store the subject's data from now on; returns the systems told (`restriction`)."""
    _row(conn, subject_id)
    marks.restricted(conn, consent, subject_id, True)
    audit.record(
        conn,
        AuditAction.SUBJECT_RESTRICTED,
        actor=actor,
        subject_id=subject_id,
        details={"request_id": request_id, "ground": ground},
    )
    return downstream.notify(
        conn, subject_id, NoticeKind.RESTRICTION, request_id=request_id, purposes=None, actor=actor
    )


def lift(
    conn: Connection,
    consent: ConsentService,
    downstream: Downstream,
    subject_id: str,
    *,
    reason: str,
    sealer: Sealer,
    subject_informed_at: str,
    request_id: str | None,
    actor: str,
) -> list[str]:
    """Art. 18(3): lift the restriction once the subject has been told; the free-text reason
    is sealed in the audit entry under the subject's key. The `restriction_lifted` notices
    name `request_id`, the restriction request they end, as its `restriction` notices did;
    returns the systems told."""
    row = _row(conn, subject_id)
    if not row.restricted:
        raise NotRestricted(f"subject {subject_id} is not restricted", subject_id=subject_id)
    marks.restricted(conn, consent, subject_id, False)
    audit.record(
        conn,
        AuditAction.SUBJECT_RESTRICTION_LIFTED,
        actor=actor,
        subject_id=subject_id,
        details={"subject_informed_at": subject_informed_at, "request_id": request_id},
        personal={"reason": reason},
        sealer=sealer,
    )
    return downstream.notify(
        conn,
        subject_id,
        NoticeKind.RESTRICTION_LIFTED,
        request_id=request_id,
        purposes=None,
        actor=actor,
    )


def object_to(
    conn: Connection,
    consent: ConsentService,
    subject_id: str,
    keys: list[str],
    *,
    request_id: str,
    actor: str,
) -> None:
    """Objections that hold (direct marketing, or upheld): checks answer `objected`."""
    if not keys:
        return
    row = _row(conn, subject_id)
    objected = _set(row.objected) | set(keys)
    pending = _set(row.restricted_purposes) - set(keys)
    marks.objections(conn, consent, subject_id, objected=objected, held=pending)
    audit.record(
        conn,
        AuditAction.SUBJECT_OBJECTED,
        actor=actor,
        subject_id=subject_id,
        details={"request_id": request_id, "purposes": sorted(keys)},
    )


def notify_objection(
    conn: Connection,
    downstream: Downstream,
    subject_id: str,
    keys: list[str],
    *,
    request_id: str,
    actor: str,
) -> list[str]:
    """Tell the systems that received the subject's data for `keys` that the objection to
    them holds (direct marketing, or upheld); returns those systems."""
    if not keys:
        return []
    return downstream.notify(
        conn, subject_id, NoticeKind.OBJECTION, request_id=request_id, purposes=keys, actor=actor
    )


def hold_pending(
    conn: Connection,
    consent: ConsentService,
    subject_id: str,
    keys: list[str],
    *,
    request_id: str,
    actor: str,
) -> None:
    """Restrict the purposes of an objection until an operator decides (Art. 18(1)(d))."""
    row = _row(conn, subject_id)
    pending = _set(row.restricted_purposes) | set(keys)
    marks.objections(conn, consent, subject_id, held=pending)
    audit.record(
        conn,
        AuditAction.SUBJECT_RESTRICTED,
        actor=actor,
        subject_id=subject_id,
        details={"request_id": request_id, "purposes": sorted(keys), "ground": "18_1_d"},
    )


def release(conn: Connection, consent: ConsentService, subject_id: str, key: str) -> None:
    """An objection overridden: the purpose is no longer held."""
    row = _row(conn, subject_id)
    marks.objections(conn, consent, subject_id, held=_set(row.restricted_purposes) - {key})


def _row(conn: Connection, subject_id: str) -> AnyRow:
    row = sql.get_subject(conn, subject_id, lock=True)
    if row is None:
        raise SubjectNotFound(f"no subject {subject_id}", subject_id=subject_id)
    return row


def _set(raw: str | None) -> set[str]:
    return set(json.loads(raw)) if raw else set()
