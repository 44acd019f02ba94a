"""Access (Art. 15) and portability (Art. 20): everything stored about a subject, streamed a
page of events at a time, so a subject with many events never needs them all in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.consent import ledger
from consentry.consent.models import Purpose
from consentry.dsr.downstream import Downstream
from consentry.ingest.sealing import open_values
from consentry.ingest.treatments import TOKEN_PREFIX, token_aad
from consentry.keys.envelope import Sealer
from consentry.storage import erasure as sql
from consentry.storage import requests as requests_sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.resolve import Subjects

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()
PAGE = 2000
CSV_COLUMNS = ("event_id", "event_type", "occurred_at", "received_at", "purposes", "properties")

RIGHTS = (
    "You may ask for access to your data (Art. 15) and a portable copy (Art. 20), its "
    "rectification (Art. 16) or erasure (Art. 17), the restriction of its processing (Art. 18), "
    "and object to processing based on legitimate interests or public task, and to direct "
    "marketing at any time (Art. 21). You may withdraw consent at any time, as easily as you "
    "gave it (Art. 7(3)), and lodge a complaint with a supervisory authority (Art. 77). In "
    "California you may also know, delete, correct, and opt out of the sale or sharing of your "
    "personal information, without discrimination (Cal. Civ. Code §1798.100-1798.125)."
)


class Reports:
    """Builds access reports and portable copies from the store, a page at a time."""

    def __init__(self, store: Store, subjects: Subjects, downstream: Downstream) -> None:
        self.store = store
        self.subjects = subjects
        self.downstream = downstream

    def access(
        self, subject_id: str, purposes: dict[str, Purpose], *, request_id: str
    ) -> Iterator[bytes]:
        """The Art. 15 report as JSON, events last and streamed."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            head = self._head(conn, subject_id, sealer, request_id)
            head["purposes"] = self._purposes(conn, subject_id, purposes, head)
            head["automated_decisions"] = {
                "made": False,
                "detail": "No decision producing legal or similarly significant effects is "
                "made by automated means (Art. 22).",
            }
            head["rights"] = RIGHTS
            head["retained"] = [
                {
                    "request_id": r.request_id,
                    "item": r.item,
                    "ground": r.ground,
                    "until": clock.rfc3339(r.until),
                }
                for r in sql.subject_retained(conn, subject_id)
            ]
            head["requests"] = [
                {
                    "request_id": r.request_id,
                    "type": r.type,
                    "status": r.status,
                    "received_at": clock.rfc3339(r.received_at),
                }
                for r in requests_sql.subject_requests(conn, subject_id)
            ]
            yield _ENC.encode(head)[:-1] + b',"events":['
            yield from _joined(self._events(conn, subject_id, sealer))
            yield b"]}"

    def portable_json(self, subject_id: str, *, request_id: str) -> Iterator[bytes]:
        """The subject's own data (Art. 20): identities, consents, events, as JSON."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            head = self._head(conn, subject_id, sealer, request_id)
            yield _ENC.encode(head)[:-1] + b',"events":['
            yield from _joined(self._events(conn, subject_id, sealer))
            yield b"]}"

    def portable_csv(self, subject_id: str) -> Iterator[bytes]:
        """One CSV row per event; properties as a JSON object in their column."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            for n, event in enumerate(self._event_dicts(conn, subject_id, sealer)):
                writer.writerow(
                    [
                        event["event_id"],
                        event["event_type"],
                        event["occurred_at"],
                        event["received_at"],
                        ";".join(event["purposes"]),
                        _ENC.encode(event["properties"]).decode(),
                    ]
                )
                if n % 500 == 0:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()

    def _head(
        self, conn: Connection, subject_id: str, sealer: Sealer, request_id: str
    ) -> dict[str, Any]:
        subject = self.subjects.get(conn, subject_id)
        identities = self.subjects.identities(conn, subject_id)
        history = ledger.history(conn, subject_id, sealer, after_version=0, limit=1_000_000)
        state = ledger.load(conn, subject_id)
        return {
            "request_id": request_id,
            "subject_found": True,
            "subject_id": subject_id,
            "generated_at": clock.rfc3339(clock.now()),
            "jurisdiction": subject.effective_jurisdiction.value,
            "identities": [{"type": i.type.value, "value": i.value} for i in identities],
            "consent": {
                key: {
                    "state": p.state.value,
                    "updated_at": clock.rfc3339(p.updated_at),
                    "expires_at": clock.rfc3339(p.expires_at) if p.expires_at else None,
                    "source": p.source.value,
                    "notice_sha256": p.notice_sha256,
                }
                for key, p in sorted(state.purposes.items())
            },
            "restricted": state.restricted,
            "objected": sorted(state.objected),
            "consent_history": [ledger.entry_out(e) for e in history],
        }

    def _purposes(
        self,
        conn: Connection,
        subject_id: str,
        purposes: dict[str, Purpose],
        head: dict[str, Any],
    ) -> dict[str, Any]:
        recipients = self.downstream.recipients(conn, subject_id)
        sources = sorted({e["source"] for e in head["consent_history"]})
        return {
            key: {
                "name": p.name,
                "legal_basis": p.legal_basis.value,
                "retention_days": p.retention_days,
                "description": p.description,
                "recipients": [r for r in recipients if key in r.get("purposes", [])],
                "source": "collected from you" + (f" ({', '.join(sources)})" if sources else ""),
                "automated_decisions": False,
            }
            for key, p in sorted(purposes.items())
        }

    def _events(self, conn: Connection, subject_id: str, sealer: Sealer) -> Iterator[bytes]:
        for page in self._pages(conn, subject_id, sealer):
            # One encoder call per page: the list's brackets dropped, its items joined.
            yield _ENC.encode(page)[1:-1]

    def _event_dicts(
        self, conn: Connection, subject_id: str, sealer: Sealer
    ) -> Iterator[dict[str, Any]]:
        for page in self._pages(conn, subject_id, sealer):
            yield from page

    def _pages(
        self, conn: Connection, subject_id: str, sealer: Sealer
    ) -> Iterator[list[dict[str, Any]]]:
        """The subject's events as report items, a page at a time."""
        after = 0
        while True:
            rows = sql.access_event_rows(conn, subject_id, after_seq=after, limit=PAGE)
            if not rows:
                return
            yield _page(conn, rows, sealer)
            if len(rows) < PAGE:
                return
            after = int(rows[-1].seq)


def _page(conn: Connection, rows: Sequence[AnyRow], sealer: Sealer) -> list[dict[str, Any]]:
    """Report items of a page of rows: each JSON column decoded once, the page's tokens
    opened with one vault query, identical purpose lists decoded once."""
    decoded: list[dict[str, Any]] = [_DEC.decode(row.properties) for row in rows]
    wanted = {
        v
        for properties in decoded
        for v in properties.values()
        if isinstance(v, str) and v.startswith(TOKEN_PREFIX)
    }
    tokens = {
        r.token: sealer.open(bytes(r.value_ct), token_aad(r.token)).decode()
        for r in sql.vault_rows(conn, sorted(wanted))
    }
    purposes: dict[str, Any] = {}
    items = []
    for row, properties in zip(rows, decoded, strict=True):
        if tokens:
            for name, value in properties.items():
                if isinstance(value, str) and value in tokens:
                    properties[name] = tokens[value]
        if row.sealed is not None:
            properties.update(open_values(sealer, bytes(row.sealed), row.event_id))
        kept = purposes.get(row.purposes)
        if kept is None:
            kept = purposes[row.purposes] = _DEC.decode(row.purposes)
        items.append(
            {
                "event_id": row.event_id,
                "event_type": row.event_type,
                # Stored in the report's own spelling (UTCTime): no parse and format again.
                "occurred_at": row.occurred_at,
                "received_at": row.received_at,
                "purposes": kept,
                "properties": properties,
            }
        )
    return items


def _joined(parts: Iterator[bytes], chunk: int = 500) -> Iterator[bytes]:
    """Comma-joined, yielded in chunks of `chunk` items (fewer, larger writes)."""
    buffer: list[bytes] = []
    first = True
    for part in parts:
        buffer.append(part)
        if len(buffer) >= chunk:
            yield (b"" if first else b",") + b",".join(buffer)
            first = False
            buffer = []
    if buffer:
        yield (b"" if first else b",") + b",".join(buffer)
