"""Privacy notices: immutable versions, identified by the SHA-256 of their text."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.models import Notice, Purpose
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import (
    InvalidRequest,
    NoticeNotFound,
    NoticeVersionConflict,
    UnknownNotice,
    UnknownPurpose,
)
from consentry.storage import consent as sql
from consentry.storage.configuration import bump_config_version
from consentry.storage.errors import ConstraintViolation

# A notice id as a URL path names it, and a version as stored.
NOTICE_ID = r"^[A-Za-z0-9._-]{1,64}$"
MAX_VERSION = 64


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_id(notice_id: str) -> None:
    """InvalidRequest for a notice id the API could not address: checked here for every
    caller (the route, `consentry apply`, evaluate)."""
    if not re.fullmatch(NOTICE_ID, notice_id):
        raise InvalidRequest("a notice id is 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")


def check_purposes(purposes: Iterable[str], known: Mapping[str, Purpose]) -> None:
    """UnknownPurpose for the first purpose a notice names that is not defined."""
    for key in purposes:
        if key not in known:
            raise UnknownPurpose(f"no purpose {key!r}", purpose=key)


def publish(
    conn: Connection,
    registry: PurposeRegistry,
    notice_id: str,
    version: str,
    text: str,
    purposes: list[str],
    *,
    actor: str,
) -> tuple[Notice, bool]:
    """Publish a notice version; re-publishing the same text is a no-op, other text a conflict."""
    check_id(notice_id)
    if not 1 <= len(version) <= MAX_VERSION:
        raise InvalidRequest(f"a notice version is 1-{MAX_VERSION} characters")
    check_purposes(purposes, registry.all(conn))
    digest = text_sha256(text)
    covered = sorted(set(purposes))
    existing = sql.get_notice(conn, notice_id, version)
    if existing is None:
        try:
            with conn.begin_nested():
                sql.insert_notice(
                    conn,
                    {
                        "notice_id": notice_id,
                        "version": version,
                        "sha256": digest,
                        "text": text,
                        "purposes": json.dumps(covered),
                        "created_at": clock.now(),
                    },
                )
        except ConstraintViolation:
            # Another request published this version first: judge against what it stored.
            existing = sql.get_notice(conn, notice_id, version)
    if existing is not None:
        if existing.sha256 != digest or json.loads(existing.purposes) != covered:
            raise NoticeVersionConflict(
                f"notice {notice_id} version {version} was published with other content; "
                "publish a new version",
                notice_id=notice_id,
            )
        return Notice(notice_id, version, digest, frozenset(covered)), False
    registry.mark_used(conn, covered)
    bump_config_version(conn)
    audit.record(
        conn,
        AuditAction.NOTICE_PUBLISHED,
        actor=actor,
        details={"notice_id": notice_id, "version": version, "sha256": digest, "purposes": covered},
    )
    return Notice(notice_id, version, digest, frozenset(covered)), True


def get(conn: Connection, notice_id: str, version: str) -> Notice:
    row = sql.get_notice(conn, notice_id, version)
    if row is None:
        raise UnknownNotice(
            f"no notice {notice_id} version {version}", notice_id=notice_id, version=version
        )
    return Notice(row.notice_id, row.version, row.sha256, frozenset(json.loads(row.purposes)))


def read(conn: Connection, notice_id: str, version: str | None) -> tuple[Notice, str]:
    """A notice and its text: the version asked for, or the newest."""
    if version is None:
        row = sql.newest_notice(conn, notice_id)
    else:
        row = sql.get_notice(conn, notice_id, version)
    if row is None:
        named = f"notice {notice_id}" + (f" version {version}" if version else "")
        raise NoticeNotFound(f"no {named}", notice_id=notice_id)
    notice = Notice(row.notice_id, row.version, row.sha256, frozenset(json.loads(row.purposes)))
    return notice, str(row.text)
