"""Marks on a subject that consent decisions read (erased, restricted, objected, held,
sensitive-limited): written with a consent version of their own, and put in the consent cache
once the transaction that wrote them has committed; `touched` does the same for any other
change that gives the subject's row a new consent version."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import compliance
from consentry.storage import consent as sql

if TYPE_CHECKING:
    from consentry.consent.service import ConsentService


def erased(conn: Connection, consent: ConsentService, subject_id: str) -> None:
    """Checks answer subject_erased and events are refused. The vendor consents of the latest
    TC string go too: a person met again starts with none (TCF vendors get nothing until a
    new TC string)."""
    _mark(
        conn,
        consent,
        subject_id,
        {
            "erasure": "erased",
            "restricted": False,
            "restricted_purposes": None,
            "tcf_vendors": None,
        },
    )


def restricted(conn: Connection, consent: ConsentService, subject_id: str, value: bool) -> None:
    """Restricted (Art. 18): the subject's data is only stored; False lifts it."""
    _mark(conn, consent, subject_id, {"restricted": value})


def objections(
    conn: Connection,
    consent: ConsentService,
    subject_id: str,
    *,
    objected: Collection[str] | None = None,
    held: Collection[str] | None = None,
) -> None:
    """The purposes objected to (the objection holds) and those held until an operator
    decides (Art. 18(1)(d)), each the whole new set; None leaves that set as it is."""
    values: dict[str, Any] = {}
    if objected is not None:
        values["objected"] = _json(objected)
    if held is not None:
        values["restricted_purposes"] = _json(held)
    _mark(conn, consent, subject_id, values)


def sensitive_limited(conn: Connection, consent: ConsentService, subject_id: str) -> None:
    """The use of sensitive personal information is limited (CCPA §1798.121)."""
    _mark(conn, consent, subject_id, {"sensitive_limited": True})


def touched(conn: Connection, consent: ConsentService, subject_id: str) -> None:
    """The subject's row got a new consent version in this write transaction (a mark, a
    jurisdiction set, an erasure mark lifted): its state is read again and cached once the
    transaction has committed, before the call that wrote it returns (unless that read fails:
    logged, and the version rule corrects the cache at its next read)."""
    # Read after the commit, replacing what is cached even at an equal version: the cache
    # never holds what a rolled-back write (or savepoint) produced. Once per subject and
    # transaction, however many marks it wrote.
    consent.cache.after_commit(conn, [subject_id], changed=True)
    # The stored compliance status changes in the same transaction as what it is made of.
    compliance.refresh(conn, [subject_id], consent.registry.all(conn), clock.now())


def _mark(
    conn: Connection, consent: ConsentService, subject_id: str, values: dict[str, Any]
) -> None:
    sql.mark_subject(conn, subject_id, values)
    touched(conn, consent, subject_id)


def _json(values: Collection[str]) -> str | None:
    return json.dumps(sorted(set(values))) if values else None
