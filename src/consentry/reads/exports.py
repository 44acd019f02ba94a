"""Exports: a job records what was asked and the policy version it was created under; the
download streams the events, checking consent again as each chunk is read, so a customer
who opts out after the export was made is not in it."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.errors import ExportNotFound, ExportNotReady
from consentry.operations import moment
from consentry.reads.query import Reads, Scope, record_stopped
from consentry.storage import reads as sql
from consentry.storage.engine import AnyRow, Store

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (
    "event_id",
    "event_type",
    "occurred_at",
    "subject_pseudonym",
    "purpose",
    "properties",
)
CHUNK = 2_000
_ENCODE = msgspec.json.Encoder()
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Export:
    export_id: str
    status: str
    purpose: str
    format: str
    filters: dict[str, Any]
    policy_version: int
    rows: int | None
    created_at: str
    completed_at: str | None

    def out(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "status": self.status,
            "purpose": self.purpose,
            "format": self.format,
            "filters": self.filters,
            "policy_version": self.policy_version,
            "rows_at_creation": self.rows,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
        }


class Exports:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads
        # Events read (and consent checked) at a time.
        self.chunk = CHUNK

    def create(self, scope: Scope, fmt: str, *, key_id: str, actor: str) -> Export:
        """Record the export and the rows it would hold now (the download reads them again)."""
        export_id = "exp_" + secrets.token_hex(12)
        with self.store.read(snapshot=True) as conn:
            version = sql.policy_version(conn)
            excluded = self.reads.visibility.excluded(conn, scope.purpose, version)
            rows = sql.total(conn, scope.filters(), excluded.keys, distinct_subjects=False)
        now = clock.now()
        filters = scope.described()
        with self.store.write() as conn:
            sql.insert_export(
                conn,
                {
                    "export_id": export_id,
                    "key_id": key_id,
                    "purpose": scope.purpose.key,
                    "format": fmt,
                    "filters": json.dumps(filters, sort_keys=True),
                    "status": "completed",
                    "policy_version": version,
                    "rows": rows,
                    "created_at": now,
                    "completed_at": now,
                },
            )
            audit.record(
                conn,
                AuditAction.DATA_EXPORTED,
                actor=actor,
                details=filters | {"export_id": export_id, "policy_version": version},
            )
        return self.get(export_id, key_id=key_id, any_key=False)

    def get(self, export_id: str, *, key_id: str, any_key: bool) -> Export:
        """The export; ExportNotFound unless this key made it (or `any_key`)."""
        with self.store.read() as conn:
            row = sql.get_export(conn, export_id)
        if row is None or (row.key_id != key_id and not any_key):
            raise ExportNotFound(f"no export {export_id!r}", export_id=export_id)
        return _export(row)

    def download(self, export: Export, scope: Scope, *, actor: str) -> tuple[int, Iterator[bytes]]:
        """(the policy version at the start of the download, the content a chunk at a time).
        Each chunk is read in its own snapshot with consent as it stands then."""
        if export.status != "completed":
            raise ExportNotReady(f"export {export.export_id} is {export.status}")
        with self.store.read() as conn:
            version = sql.policy_version(conn)
        with self.store.write() as conn:
            audit.record(
                conn,
                AuditAction.DATA_EXPORT_DOWNLOADED,
                actor=actor,
                details={"export_id": export.export_id, "policy_version": version},
            )
        return version, self._content(export, scope, actor)

    def _content(self, export: Export, scope: Scope, actor: str) -> Iterator[bytes]:
        """The download a chunk of events at a time (one write each, not one per line)."""
        if export.format == "csv":
            yield _csv_line(CSV_COLUMNS)
        for items in self._chunks(scope, actor):
            if export.format == "csv":
                yield b"".join(
                    _csv_line(
                        [
                            item["event_id"],
                            item["event_type"],
                            item["occurred_at"],
                            item["subject_pseudonym"],
                            item["purpose"],
                            _ENCODE.encode(item["properties"]).decode(),
                        ]
                    )
                    for item in items
                )
            elif items:
                yield b"\n".join([_ENCODE.encode(item) for item in items]) + b"\n"

    def _chunks(self, scope: Scope, actor: str) -> Iterator[list[dict[str, Any]]]:
        """The events as the purpose sees them, a chunk at a time, each chunk read with
        consent as it stands then; each subject's key unwrapped once for the whole download."""
        after = 0
        chunk = self.chunk
        filters = scope.filters()
        view = None
        allowed: moment.Allowed = {}
        while True:
            with self.store.read(snapshot=True) as conn:
                version = sql.policy_version(conn)
                excluded = self.reads.visibility.excluded(conn, scope.purpose, version)
                rows = sql.page(conn, filters, excluded.keys, after, chunk)
                if view is None:
                    view = self.reads.view(conn, scope.purpose)
                visibility = self.reads.visibility
                subjects = {row[4] for row in rows}
                stopped = visibility.stopped(conn, scope.purpose, subjects, allowed)
                shown = [row for row in rows if row[4] not in stopped] if stopped else rows
                items = view.items(conn, shown, excluded, raw=True)
            if stopped:
                with self.store.write() as conn:
                    record_stopped(conn, scope.purpose.key, rows, stopped, actor)
            yield items
            if len(rows) < chunk:
                return
            after = int(rows[-1][0])


def _csv_line(values: Any) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _export(row: AnyRow) -> Export:
    return Export(
        row.export_id,
        row.status,
        row.purpose,
        row.format,
        json.loads(row.filters),
        int(row.policy_version),
        None if row.rows is None else int(row.rows),
        clock.rfc3339(row.created_at),
        None if row.completed_at is None else clock.rfc3339(row.completed_at),
    )
