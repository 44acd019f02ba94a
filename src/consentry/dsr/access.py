"""Access (Art. 15) and portability (Art. 20): everything stored about a subject (the portable
copy: what the subject provided, on consent or contract), other persons' data in events and
consent evidence redacted, streamed a page of events at a time, so a subject with many events
never needs them all in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.consent import ledger
from consentry.consent.models import LegalBasis, Purpose
from consentry.dsr.downstream import Downstream
from consentry.dsr.third_parties import NOTE, Others
from consentry.governance.inferences import report_item
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema
from consentry.ingest.sealing import open_values
from consentry.ingest.treatments import TOKEN_PREFIX, token_aad
from consentry.keys.envelope import Sealer
from consentry.storage import inferences as inferences_sql
from consentry.storage import ingest as events_sql
from consentry.storage import requests as requests_sql
from consentry.storage import retained as retained_sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.models import Identity
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
PROVIDED = (
    "This copy holds the data you provided that we process on your consent or for a contract "
    "with you (Art. 20(1)): your identities, your consents and the events stored for such a "
    "purpose, without the fields kept only for other purposes and without values we derived "
    "(pseudonyms). Your access report (Art. 15) holds everything we store about you."
)
# Art. 20(1)(a): the legal bases a portable copy is drawn from.
PORTABLE_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})


class Provided:
    """What of the subject's events a portable copy holds (Art. 20(1)): events stored for a
    purpose on consent or contract, without fields kept only for other purposes (their
    `field_purposes`) nor the pseudonyms we computed (the event type's current schema)."""

    def __init__(self, purposes: dict[str, Purpose], schemas: dict[str, CompiledSchema]) -> None:
        self.keys = frozenset(k for k, p in purposes.items() if p.legal_basis in PORTABLE_BASES)
        self.derived = {
            event_type: frozenset(
                name
                for name, spec in compiled.fields.items()
                if spec.treatment is Treatment.PSEUDONYMISE
            )
            for event_type, compiled in schemas.items()
        }

    def event(self, purposes: list[str]) -> bool:
        return not self.keys.isdisjoint(purposes)

    def narrow(self, row: AnyRow, properties: dict[str, Any]) -> None:
        """Leave out, in place, the fields of `properties` the copy does not hold."""
        derived = self.derived.get(row.event_type, frozenset())
        only: dict[str, list[str]] = _DEC.decode(row.field_purposes) if row.field_purposes else {}
        for name in list(properties):
            if name in derived or (name in only and self.keys.isdisjoint(only[name])):
                del properties[name]


class Reports:
    """Builds access reports and portable copies from the store, a page at a time."""

    def __init__(
        self, store: Store, subjects: Subjects, downstream: Downstream, phone_region: str = ""
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.downstream = downstream
        self.phone_region = phone_region

    def access(
        self, subject_id: str, purposes: dict[str, Purpose], *, request_id: str
    ) -> Iterator[bytes]:
        """The Art. 15 report as JSON, events last and streamed."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            head = self._head(conn, subject_id, sealer, request_id)
            head["purposes"] = self._purposes(conn, subject_id, purposes, head)
            head["automated_decisions"] = _automated(conn, subject_id, sealer, purposes)
            head["rights"] = RIGHTS
            head["others_data"] = NOTE
            head["retained"] = [
                {
                    "request_id": r.request_id,
                    "item": r.item,
                    "ground": r.ground,
                    "until": clock.rfc3339(r.until),
                }
                for r in retained_sql.subject_retained(conn, subject_id)
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
            yield from _joined(self._events(conn, subject_id, sealer, None))
            yield b"]}"

    def portable_json(
        self, subject_id: str, provided: Provided, *, request_id: str
    ) -> Iterator[bytes]:
        """What the subject provided, on consent or contract (Art. 20(1)): identities,
        consents, events, as JSON."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            head = self._head(conn, subject_id, sealer, request_id)
            head["provided"] = PROVIDED
            head["others_data"] = NOTE
            yield _ENC.encode(head)[:-1] + b',"events":['
            yield from _joined(self._events(conn, subject_id, sealer, provided))
            yield b"]}"

    def portable_csv(self, subject_id: str, provided: Provided) -> Iterator[bytes]:
        """One CSV row per event of the portable copy; properties as a JSON object in their
        column."""
        with self.store.read() as conn:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(CSV_COLUMNS)
            events = self._event_dicts(conn, subject_id, sealer, provided)
            for n, event in enumerate(events):
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
        entries = [ledger.entry_out(e) for e in history]
        # Evidence is the operator's free JSON: a parent's address, a witness's number
        # (Art. 15(4)). The consent history endpoint keeps it whole, as proof of consent.
        others = Others(conn, self.subjects, subject_id, identities, self.phone_region)
        redacted = others.values([entry["evidence"] for entry in entries])
        for entry, evidence in zip(entries, redacted, strict=True):
            entry["evidence"] = evidence
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
            "consent_history": entries,
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
                "automated_decisions": p.automated_decision_basis is not None,
            }
            for key, p in sorted(purposes.items())
        }

    def _events(
        self, conn: Connection, subject_id: str, sealer: Sealer, provided: Provided | None
    ) -> Iterator[bytes]:
        for page in self._pages(conn, subject_id, sealer, provided):
            # One encoder call per page: the list's brackets dropped, its items joined.
            if page:
                yield _ENC.encode(page)[1:-1]

    def _event_dicts(
        self, conn: Connection, subject_id: str, sealer: Sealer, provided: Provided
    ) -> Iterator[dict[str, Any]]:
        for page in self._pages(conn, subject_id, sealer, provided):
            yield from page

    def _pages(
        self, conn: Connection, subject_id: str, sealer: Sealer, provided: Provided | None
    ) -> Iterator[list[dict[str, Any]]]:
        """The subject's events as report items (those of the portable copy, with
        `provided`), other persons' data redacted, a page at a time."""
        own: list[Identity] = self.subjects.identities(conn, subject_id)
        others = Others(conn, self.subjects, subject_id, own, self.phone_region)
        after = 0
        while True:
            rows = events_sql.access_event_rows(conn, subject_id, after_seq=after, limit=PAGE)
            if not rows:
                return
            items, personal = _page(conn, rows, sealer, provided)
            others.page(items, personal)
            yield items
            if len(rows) < PAGE:
                return
            after = int(rows[-1].seq)


def _automated(
    conn: Connection, subject_id: str, sealer: Sealer, purposes: dict[str, Purpose]
) -> dict[str, Any]:
    """Art. 15(1)(h): whether a decision with legal or similarly significant effects was made
    about the subject by automated means, and every model inference about them, each with the
    logic involved, its significance and envisaged consequences."""
    items = [
        report_item(row, sealer, purposes)
        for row in inferences_sql.subject_inferences(conn, subject_id)
    ]
    made = any(i["automated_decision"] and i["significant_effect"] for i in items)
    detail = (
        "Decisions producing legal or similarly significant effects were made about you by "
        "automated means (Art. 22): each is listed under `inferences`, and you may contest it."
        if made
        else "No decision producing legal or similarly significant effects is made by "
        "automated means (Art. 22)."
    )
    return {"made": made, "detail": detail, "inferences": items}


def _page(
    conn: Connection, rows: Sequence[AnyRow], sealer: Sealer, provided: Provided | None
) -> tuple[list[dict[str, Any]], list[set[str]]]:
    """Report items of a page of rows, and the names of each item's personal values (opened
    from the vault or the sealed column): each JSON column decoded once, the page's tokens
    opened with one vault query, identical purpose lists decoded once."""
    purposes: dict[str, Any] = {}
    if provided is not None:
        rows = [r for r in rows if provided.event(_purposes(purposes, r.purposes))]
    decoded: list[dict[str, Any]] = [_DEC.decode(row.properties) for row in rows]
    wanted = {
        v
        for properties in decoded
        for v in properties.values()
        if isinstance(v, str) and v.startswith(TOKEN_PREFIX)
    }
    tokens = {
        r.token: sealer.open(bytes(r.value_ct), token_aad(r.token)).decode()
        for r in events_sql.vault_rows(conn, sorted(wanted))
    }
    items = []
    personal: list[set[str]] = []
    for row, properties in zip(rows, decoded, strict=True):
        names: set[str] = set()
        if tokens:
            for name, value in properties.items():
                if isinstance(value, str) and value in tokens:
                    properties[name] = tokens[value]
                    names.add(name)
        if row.sealed is not None:
            opened = open_values(sealer, bytes(row.sealed), row.event_id)
            properties.update(opened)
            names.update(opened)
        personal.append(names)
        if provided is not None:
            provided.narrow(row, properties)
        items.append(
            {
                "event_id": row.event_id,
                "event_type": row.event_type,
                # Stored in the report's own spelling (UTCTime): no parse and format again.
                "occurred_at": row.occurred_at,
                "received_at": row.received_at,
                "purposes": _purposes(purposes, row.purposes),
                "properties": properties,
            }
        )
    return items, personal


def _purposes(decoded: dict[str, Any], raw: str) -> Any:
    """A row's purpose list, each distinct list decoded once."""
    kept = decoded.get(raw)
    if kept is None:
        kept = decoded[raw] = _DEC.decode(raw)
    return kept


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
