"""A request waiting for downstream systems: the move to `awaiting_downstream` or `completed`
once its own work is done, and completion once every system has acknowledged. Whether a
system has acknowledged is read from the request's rights notices alone (the port's
`acknowledgements`): a lifting's notices, sent after the restriction's were answered, are
waited for like any other."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from consentry.dsr.downstream import Downstream
from consentry.dsr.models import Request, Status, Step
from consentry.dsr.records import advance


def waiting_for(conn: Connection, downstream: Downstream, request_id: str) -> list[str]:
    """The systems with a notice of the request not yet acknowledged."""
    return [
        a["system_id"]
        for a in downstream.acknowledgements(conn, request_id)
        if a["acknowledged_at"] is None
    ]


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
    if not awaited and not wait:
        return advance(conn, request, Status.COMPLETED, actor=actor, step=Step.DONE, values=values)
    return advance(
        conn,
        request,
        Status.AWAITING_DOWNSTREAM,
        actor=actor,
        step=Step.NOTIFIED,
        details={"systems": awaited},
        values=values,
    )


def complete_if_acknowledged(
    conn: Connection, downstream: Downstream, request: Request, *, actor: str
) -> Request:
    """Complete a waiting request once every system has acknowledged each of its notices
    (through its rights endpoint, or by hand). The caller holds the request's row lock."""
    if request.step is not Step.NOTIFIED or not request.is_open:
        return request
    if waiting_for(conn, downstream, request.request_id):
        return request
    return advance(conn, request, Status.COMPLETED, actor=actor, step=Step.DONE)
