"""Rectification (Art. 16) of identity values: the change is made only when the caller proves
which value it replaces (SHA-256 of the normalised current value)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import NoticeKind
from consentry.errors import IdentityConflict, IntegrityMismatch
from consentry.storage import subjects as sql
from consentry.storage.errors import ConstraintViolation
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.resolve import Subjects, identity_aad


def check(
    conn: Connection, subjects: Subjects, subject_id: str, changes: list[dict[str, Any]]
) -> None:
    """IntegrityMismatch unless every `old_sha256` names a current value of the subject."""
    _matches(conn, subjects, subject_id, changes)


def rectify(
    conn: Connection,
    subjects: Subjects,
    downstream: Downstream,
    subject_id: str,
    changes: list[dict[str, Any]],
    *,
    request_id: str,
    actor: str,
) -> list[str]:
    """Replace each identity value; audited with keyed hashes (under the subject's key) of the
    old and new values. Returns the systems told (`rectification`, with the new values of
    the categories each declares)."""
    sealer = subjects.keys.sealer(conn, subject_id)
    for change, row in _matches(conn, subjects, subject_id, changes):
        new = Identity(IdentityType(change["type"]), change["value"])
        try:
            with conn.begin_nested():
                sql.update_identity(
                    conn,
                    int(row.identity_id),
                    subjects.blind_index.of(new),
                    sealer.seal(new.value.encode(), identity_aad(subject_id, new.type.value)),
                )
        except ConstraintViolation:
            raise IdentityConflict("the new value is another subject's identity") from None
        audit.record(
            conn,
            AuditAction.SUBJECT_IDENTITY_RECTIFIED,
            actor=actor,
            subject_id=subject_id,
            details={
                "request_id": request_id,
                "type": new.type.value,
                "old_keyed_hash": subjects.keys.keyed_hash(conn, subject_id, change["_old"]),
                "new_keyed_hash": subjects.keys.keyed_hash(conn, subject_id, new.value.encode()),
            },
        )
    return downstream.notify(
        conn,
        subject_id,
        NoticeKind.RECTIFICATION,
        request_id=request_id,
        purposes=None,
        actor=actor,
        corrected=[(change["type"], change["value"]) for change in changes],
    )


def _matches(
    conn: Connection, subjects: Subjects, subject_id: str, changes: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], Any]]:
    sealer = subjects.keys.sealer(conn, subject_id)
    rows = sql.identity_rows(conn, subject_id)
    found = []
    for change in changes:
        for row in rows:
            if row.type != change["type"]:
                continue
            old = sealer.open(bytes(row.value_ct), identity_aad(subject_id, row.type))
            if hmac.compare_digest(hashlib.sha256(old).hexdigest(), change["old_sha256"].lower()):
                found.append((change | {"_old": old}, row))
                break
        else:
            raise IntegrityMismatch(
                f"old_sha256 matches no current {change['type']} of the subject",
                type=change["type"],
            )
    return found
