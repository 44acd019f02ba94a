"""SQL of model inferences: recorded, read for a review or an access report, contested,
reviewed; and the input events an inference names (their type and narrowed fields)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

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
