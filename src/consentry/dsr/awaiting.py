"""A request waiting for downstream systems: the move to `awaiting_downstream` or `completed`
once its own work is done, and completion once every system has acknowledged and (an erasure)
the subject's records on the stream mode's consented topics are past their retention. Whether
a system has acknowledged is read from the request's rights notices alone (the port's
`acknowledgements`): a lifting's notices, sent after the restriction's were answered, are
waited for like any other. What it waits for on a topic is written by the purge
(dsr/erasure.py, `topic_waits`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import Request, RequestType, Status, Step
from consentry.dsr.records import advance
from consentry.storage import stream as stream_sql


def waiting_for(conn: Connection, downstream: Downstream, request_id: str) -> list[str]:
    """The systems with a notice of the request not yet acknowledged."""
    return [
        a["system_id"]
        for a in downstream.acknowledgements(conn, request_id)
        if a["acknowledged_at"] is None
    ]


def topics_of(conn: Connection, request_id: str, now: datetime) -> list[dict[str, Any]]:
    """What the request waits or waited for on consented topics: `topic`, `until` (RFC 3339:
    when the subject's records there are past the topic's retention) and `waiting` (until
    is still ahead)."""
    return [
        {"topic": r.topic, "until": clock.rfc3339(r.until), "waiting": r.until > now}
        for r in stream_sql.waits_of(conn, request_id)
    ]


def topics_waiting(conn: Connection, request_id: str) -> list[str]:
    """The consented topics still holding the subject's records the request waits for."""
    return [t["topic"] for t in topics_of(conn, request_id, clock.now()) if t["waiting"]]


def finish(
    conn: Connection,
    downstream: Downstream,
    request: Request,
    *,
    actor: str,
    result: dict[str, Any] | None = None,
    wait: bool = False,
) -> Request:
    """The request's own work is done: it completes, or waits in `awaiting_downstream`
    while a system it sent notices to has not acknowledged them all. `wait`: wait even when
    nobody was told (the runner completes it at its next pass), so that an unverified
    request answers the same whether or not the person's data reached anyone."""
    values = None if result is None else {"result": json.dumps(result)}
    awaited = waiting_for(conn, downstream, request.request_id)
    topics = topics_waiting(conn, request.request_id)
    if not awaited and not topics and not wait:
        return _complete(conn, request, actor=actor, values=values)
    details: dict[str, Any] = {"systems": awaited}
    if topics:
        details["topics"] = topics
    return advance(
        conn,
        request,
        Status.AWAITING_DOWNSTREAM,
        actor=actor,
        step=Step.NOTIFIED,
        details=details,
        values=values,
    )


def complete_if_acknowledged(
    conn: Connection, downstream: Downstream, request: Request, *, actor: str
) -> Request:
    """Complete a waiting request once every system has acknowledged each of its notices
    (through its rights endpoint, or by hand) and nothing it waits for on a consented topic
    is still there. The caller holds the request's row lock."""
    if request.step is not Step.NOTIFIED or not request.is_open:
        return request
    if waiting_for(conn, downstream, request.request_id):
        return request
    if topics_waiting(conn, request.request_id):
        return request
    return _complete(conn, request, actor=actor)


def _complete(
    conn: Connection, request: Request, *, actor: str, values: dict[str, Any] | None = None
) -> Request:
    """Completed; an erasure's subject leaves no mark on the consented topics behind (its
    records there are past their retention: the request waited for that)."""
    if request.type is RequestType.ERASURE and request.subject_id is not None:
        stream_sql.delete_marks(conn, request.subject_id)
    return advance(conn, request, Status.COMPLETED, actor=actor, step=Step.DONE, values=values)
