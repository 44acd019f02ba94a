"""The consent report: ledger entries filtered by purpose, state, source and time, a page at
a time or whole as CSV; every read audited with its filters (it lists pseudonymous subject
ids, personal data)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.auth.models import Permission
from consentry.storage import consent as sql
from consentry.storage.engine import AnyRow, Store

COLUMNS = sql.REPORT_COLUMNS
# Who may read it, through the API and the dashboard alike: the compliance readers (admin,
# dpo, auditor), not an operator.
PERMISSION = Permission.COMPLIANCE_READ
# Rows read per transaction while a CSV streams.
CSV_PAGE = 1000
# A spreadsheet runs a cell starting so as a formula: such cells get a leading apostrophe.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """What the report lists (None: any); `start` included, `end` not."""

    purpose: str | None = None
    state: str | None = None
    source: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def as_audit(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("purpose", "state", "source"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.start is not None:
            out["from"] = clock.rfc3339(self.start)
        if self.end is not None:
            out["to"] = clock.rfc3339(self.end)
        return out


def page(
    store: Store, wanted: ReportFilter, *, after: int, limit: int, actor: str
) -> list[dict[str, Any]]:
    """Up to `limit` entries after entry `after`, oldest first; the read is audited."""
    with store.write() as conn:
        rows = _rows(conn, wanted, after, limit)
        audit.record(
            conn,
            AuditAction.CONSENT_REPORT_READ,
            actor=actor,
            details={"filters": wanted.as_audit(), "rows": len(rows), "format": "json"},
        )
    return [_entry(row) for row in rows]


def csv_lines(store: Store, wanted: ReportFilter, *, actor: str) -> Iterator[str]:
    """The whole report as CSV text (a header, then a line per entry), read a page at a time
    so that a large ledger streams; the read is audited when it starts."""
    with store.write() as conn:
        audit.record(
            conn,
            AuditAction.CONSENT_REPORT_READ,
            actor=actor,
            details={"filters": wanted.as_audit(), "format": "csv"},
        )
    yield _line(COLUMNS)
    after = 0
    while True:
        with store.read() as conn:
            rows = _rows(conn, wanted, after, CSV_PAGE)
        for row in rows:
            entry = _entry(row)
            yield _line([_cell(entry[name]) for name in COLUMNS])
        if len(rows) < CSV_PAGE:
            return
        after = int(rows[-1].entry_id)


def _rows(conn: Connection, wanted: ReportFilter, after: int, limit: int) -> list[AnyRow]:
    return list(
        sql.ledger_report(
            conn,
            purpose=wanted.purpose,
            state=wanted.state,
            source=wanted.source,
            start=wanted.start,
            end=wanted.end,
            after=after,
            limit=limit,
        )
    )


def _entry(row: AnyRow) -> dict[str, Any]:
    entry = dict(row._mapping)
    for name in ("at", "expires_at"):
        if entry[name] is not None:
            entry[name] = clock.rfc3339(entry[name])
    entry["entry_id"] = int(entry["entry_id"])
    return entry


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _line(cells: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
