"""SQL for people who sign in to the pages: accounts, enrolment links, sessions (hashes and
sealed values only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import people, person_enrolments, person_sessions


def insert_person(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a person; False when another holds the same e-mail index (the row is not
    written and the caller's transaction goes on)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(people).values(**values))
    except ConstraintViolation:
        return False
    return True


def get_person(conn: Connection, person_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(people).where(people.c.person_id == person_id)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def find_person(conn: Connection, email_index: bytes, *, lock: bool = False) -> AnyRow | None:
    stmt = select(people).where(people.c.email_index == email_index)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def list_people(conn: Connection) -> Sequence[AnyRow]:
    return conn.execute(select(people).order_by(people.c.created_at, people.c.person_id)).all()


def update_person(conn: Connection, person_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(people).where(people.c.person_id == person_id).values(**values))


def insert_enrolment(
    conn: Connection, token_hash: bytes, person_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        insert(person_enrolments).values(
            token_hash=token_hash, person_id=person_id, created_at=now, expires_at=expires_at
        )
    )


def get_enrolment(conn: Connection, token_hash: bytes) -> AnyRow | None:
    return conn.execute(
        select(person_enrolments).where(person_enrolments.c.token_hash == token_hash)
    ).first()


def use_enrolment(conn: Connection, token_hash: bytes, now: datetime) -> bool:
    """Mark an enrolment link used; False when it already was (another request won)."""
    result = conn.execute(
        update(person_enrolments)
        .where(
            person_enrolments.c.token_hash == token_hash,
            person_enrolments.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


def insert_session(
    conn: Connection, token_hash: bytes, person_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        insert(person_sessions).values(
            token_hash=token_hash,
            person_id=person_id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


def get_session(conn: Connection, token_hash: bytes) -> AnyRow | None:
    """The session with its person's role and status (one query)."""
    stmt = (
        select(person_sessions, people.c.role, people.c.status)
        .join(people, people.c.person_id == person_sessions.c.person_id)
        .where(person_sessions.c.token_hash == token_hash)
    )
    return conn.execute(stmt).first()


def touch_session(conn: Connection, token_hash: bytes, now: datetime) -> None:
    conn.execute(
        update(person_sessions)
        .where(person_sessions.c.token_hash == token_hash)
        .values(last_seen_at=now)
    )


def delete_session(conn: Connection, token_hash: bytes) -> str | None:
    """Delete a session; the person it belonged to, or None when there was none."""
    row = conn.execute(
        delete(person_sessions)
        .where(person_sessions.c.token_hash == token_hash)
        .returning(person_sessions.c.person_id)
    ).first()
    return None if row is None else str(row.person_id)


def delete_sessions_of(conn: Connection, person_id: str) -> int:
    result = conn.execute(delete(person_sessions).where(person_sessions.c.person_id == person_id))
    return int(result.rowcount)


def delete_ended_sessions_of(
    conn: Connection, person_id: str, idle_since: datetime, now: datetime
) -> int:
    """Delete a person's sessions past their absolute end or idle since `idle_since`."""
    result = conn.execute(
        delete(person_sessions).where(
            person_sessions.c.person_id == person_id,
            (person_sessions.c.expires_at <= now) | (person_sessions.c.last_seen_at <= idle_since),
        )
    )
    return int(result.rowcount)
