"""A request waiting for downstream systems: the acknowledgements its Art. 19 notices await,
and the move to `awaiting_downstream` or `completed` once its own work is done."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import Request, Status, Step
from consentry.dsr.records import advance
from consentry.storage import requests as sql


def expect(conn: Connection, request_id: str, systems: Sequence[str], kind: str) -> None:
    """The request now awaits an acknowledgement from each of `systems` (notices of `kind`
    just queued to them): one acknowledged before is awaited again."""
    sql.insert_acks(conn, request_id, systems, kind, clock.now())


def finish(
    conn: Connection,
    downstream: Downstream,
    request: Request,
    *,
    actor: str,
    result: dict[str, Any] | None = None,
) -> Request:
    """The request's own work is done: it completes, or waits in `awaiting_downstream`
    while a system it sent notices to has not acknowledged them all."""
    values = None if result is None else {"result": json.dumps(result)}
    awaited = [r.system_id for r in sql.acks(conn, request.request_id)]
    if not awaited:
        return advance(conn, request, Status.COMPLETED, actor=actor, step=Step.DONE, values=values)
    request = advance(
        conn,
        request,
        Status.AWAITING_DOWNSTREAM,
        actor=actor,
        step=Step.NOTIFIED,
        details={"systems": awaited},
        values=values,
    )
    return complete_if_acknowledged(conn, downstream, request, actor=actor)


def await_notices(
    conn: Connection,
    downstream: Downstream,
    request: Request,
    systems: Sequence[str],
    kind: str,
    *,
    actor: str,
) -> Request:
    """After notices went out: wait for each system's acknowledgement, or complete."""
    expect(conn, request.request_id, systems, kind)
    return finish(conn, downstream, request, actor=actor)


def complete_if_acknowledged(
    conn: Connection, downstream: Downstream, request: Request, *, actor: str
) -> Request:
    """Complete a waiting request once every system has acknowledged its notices (through
    its rights endpoint, recorded here, or by hand)."""
    if request.step is not Step.NOTIFIED or not request.is_open:
        return request
    now = clock.now()
    for system_id in downstream.acknowledged(conn, request.request_id):
        if sql.acknowledge(conn, request.request_id, system_id, now, "endpoint"):
            audit.record(
                conn,
                AuditAction.REQUEST_ACKNOWLEDGED,
                actor=actor,
                subject_id=request.subject_id,
                details={
                    "request_id": request.request_id,
                    "system_id": system_id,
                    "via": "endpoint",
                },
            )
    if any(r.acknowledged_at is None for r in sql.acks(conn, request.request_id)):
        return request
    return advance(conn, request, Status.COMPLETED, actor=actor, step=Step.DONE)
