"""Reversing tokens: the only road back from a token to its value, audited per subject."""

from __future__ import annotations

from sqlalchemy import Connection

from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import SubjectKeyDestroyed
from consentry.ingest.treatments import token_aad
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import ingest as sql

MAX_TOKENS = 1000


def detokenize(
    conn: Connection, keys: SubjectKeys, tokens: list[str], *, actor: str, reason: str
) -> tuple[dict[str, str], list[str]]:
    """({token: value} for tokens that resolve, [tokens that do not]). Each value read is an
    audit entry naming the subject and the field, with the reason sealed under the subject's
    key; the value itself is not in it."""
    values: dict[str, str] = {}
    unknown: list[str] = []
    for token in dict.fromkeys(tokens):
        row = sql.get_token(conn, token)
        if row is None:
            unknown.append(token)
            continue
        try:
            sealer = keys.sealer(conn, row.subject_id)
        except SubjectKeyDestroyed:
            unknown.append(token)
            continue
        values[token] = sealer.open(bytes(row.value_ct), token_aad(token)).decode()
        # The reason is free text an operator typed, so it may name the person: sealed.
        audit.record(
            conn,
            AuditAction.DATA_DETOKENIZED,
            actor=actor,
            subject_id=row.subject_id,
            details={"token": token, "field": row.field},
            personal={"reason": reason},
            sealer=sealer,
        )
    return values, unknown
