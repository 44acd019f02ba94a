"""Duplicate requests: a new request is the same as an open one of its subject only when that
one asks the same thing and has yet to do it, so that no request is ever dropped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from consentry.dsr.models import OPEN, Request, RequestType, Scope, Step
from consentry.dsr.records import Notes, request_of
from consentry.storage import requests as sql

_OPEN = sorted(s.value for s in OPEN)

# Steps at which a request's own work is done: it only waits for acknowledgements (or has
# ended). What it did may have been undone since (a restriction lifted, a value changed
# again): a new request asking the same must do it again.
_WORK_DONE = frozenset({Step.NOTIFIED, Step.DONE})


def find(
    conn: Connection,
    notes: Notes,
    subject_id: str,
    type_: RequestType,
    *,
    format: str | None,
    ground: str | None,
    purposes: Sequence[str] | None,
    changes: Sequence[dict[str, str]],
    scope: Scope | None = None,
) -> Request | None:
    """The subject's oldest open request of `type_` that asks what the new one asks (format,
    ground, purposes, scope, a rectification's changes) and has yet to do it; None: the new
    one is a request of its own."""
    asked = _asked(format, ground, purposes, changes, scope)
    for row in sql.open_requests(conn, subject_id, type_.value, _OPEN):
        other = request_of(row)
        if other.step in _WORK_DONE:
            continue
        # Only a rectification keeps what it asks in its sealed notes.
        noted = notes.read(conn, other.request_id) if type_ is RequestType.RECTIFICATION else {}
        noted_changes = noted.get("changes", [])
        if _asked(other.format, other.ground, other.purposes, noted_changes, other.scope) == asked:
            return other
    return None


def _asked(
    format: str | None,
    ground: str | None,
    purposes: Sequence[str] | None,
    changes: Sequence[dict[str, Any]],
    scope: Scope | None,
) -> tuple[Any, ...]:
    return (
        format,
        scope or Scope.DATA,
        ground,
        None if purposes is None else tuple(sorted(set(purposes))),
        tuple(sorted(json.dumps(c, sort_keys=True) for c in changes)),
    )
