"""SQL of model inferences: recorded, read for a review or an access report, contested,
reviewed, deleted by a withdrawal's purge or at the end of their retention; and the input
events an inference names (their type and narrowed fields)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from consentry.storage.engine import AnyRow
from consentry.storage.schema import events, inferences


def insert_inference(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(inferences).values(**values))


def get_inference(conn: Connection, inference_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(inferences).where(inferences.c.inference_id == inference_id)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def subject_inferences(conn: Connection, subject_id: str) -> Sequence[AnyRow]:
    """The subject's inferences, oldest first."""
    stmt = (
        select(inferences).where(inferences.c.subject_id == subject_id).order_by(inferences.c.seq)
    )
    return conn.execute(stmt).all()


def update_inference(conn: Connection, inference_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(inferences).where(inferences.c.inference_id == inference_id).values(**values)
    )


def input_events(conn: Connection, subject_id: str, event_ids: Sequence[str]) -> Sequence[AnyRow]:
    """Of `event_ids`, those stored for this subject: id, type and field purposes."""
    if not event_ids:
        return []
    stmt = select(events.c.event_id, events.c.event_type, events.c.field_purposes).where(
        events.c.subject_id == subject_id, events.c.event_id.in_(list(event_ids))
    )
    return conn.execute(stmt).all()


def delete_for_purpose(
    conn: Connection, subject_id: str, purpose: str, *, created_by: datetime
) -> int:
    """Delete the subject's inferences for `purpose` recorded by `created_by`."""
    stmt = delete(inferences).where(
        inferences.c.subject_id == subject_id,
        inferences.c.purpose == purpose,
        inferences.c.created_at <= created_by,
    )
    return int(conn.execute(stmt).rowcount)


def max_seq(conn: Connection) -> int:
    """The position of the latest inference (0 when there is none)."""
    return int(conn.execute(select(func.max(inferences.c.seq))).scalar() or 0)


def ended(
    conn: Connection, cutoffs: dict[str, datetime], after_seq: int, upto_seq: int
) -> Sequence[AnyRow]:
    """Of the inferences in the window (after_seq, upto_seq], those recorded by their
    purpose's cutoff: seq, id, subject, purpose."""
    if not cutoffs:
        return []
    stmt = (
        select(
            inferences.c.seq,
            inferences.c.inference_id,
            inferences.c.subject_id,
            inferences.c.purpose,
        )
        .where(
            inferences.c.seq > after_seq,
            inferences.c.seq <= upto_seq,
            or_(
                *(
                    and_(inferences.c.purpose == key, inferences.c.created_at <= cutoff)
                    for key, cutoff in sorted(cutoffs.items())
                )
            ),
        )
        .order_by(inferences.c.seq)
    )
    return conn.execute(stmt).all()


def delete_ids(conn: Connection, inference_ids: Sequence[str]) -> int:
    if not inference_ids:
        return 0
    stmt = delete(inferences).where(inferences.c.inference_id.in_(list(inference_ids)))
    return int(conn.execute(stmt).rowcount)


def purposes_inferred(conn: Connection) -> frozenset[str]:
    """The purposes some stored model inference was recorded for."""
    return frozenset(conn.execute(select(inferences.c.purpose).distinct()).scalars())
