"""The ingest section's baselines: what storing the same batches costs with no privacy work.

The fair one (`insert`) writes into the production events table, made by the storage's own
migrations in a fresh store (so its indexes are exactly production's), one `Store.write`
transaction per batch; the old one (`raw_insert`) into an index-free table, kept for
reference (docs/decisions.md, "A fair ingest baseline")."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

import msgspec

from consentry import clock
from consentry.storage import ingest as ingest_sql
from consentry.storage.dialect import SQLITE_FILE
from consentry.storage.engine import Store
from consentry.storage.migrate import upgrade

# The fixed values of the NOT NULL columns that only privacy work fills.
_SCHEMA_VERSION = 1
_PURPOSES = "[]"


class _Subject(msgspec.Struct):
    subject_id: str | None = None


class _Event(msgspec.Struct):
    event_id: str
    event_type: str
    occurred_at: datetime
    subject: _Subject
    properties: msgspec.Raw = msgspec.Raw(b"{}")


class _Batch(msgspec.Struct):
    events: list[_Event]


_BATCH = msgspec.json.Decoder(_Batch)


def open_store(directory: Path) -> Store:
    """A fresh SQLite store in `directory`, brought to head by the storage's migrations: the
    same tables, indexes, triggers and pragmas as the gateway's own."""
    directory.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{directory / SQLITE_FILE}")
    upgrade(store)
    return store


def rows(body: bytes) -> list[tuple[object, ...]]:
    """The batch's events as events rows (storage/ingest.EVENT_COLUMNS order): the values as
    sent, properties as their JSON text, nothing sealed, minimised or decided."""
    received = clock.rfc3339(clock.now())
    return [
        (
            e.event_id,
            e.event_type,
            _SCHEMA_VERSION,
            clock.rfc3339(e.occurred_at),
            received,
            e.subject.subject_id or "",
            _PURPOSES,
            bytes(e.properties).decode(),
            None,
            None,
            0,
            0,
        )
        for e in _BATCH.decode(body).events
    ]


def insert(store: Store, bodies: list[bytes]) -> float:
    """Seconds to decode and store every batch, one write transaction each (as the pipeline
    stores a batch), through the pipeline's own insert statement."""
    started = time.perf_counter()
    for body in bodies:
        batch = rows(body)
        with store.write() as conn:
            ingest_sql.insert_events(conn, batch)
    return time.perf_counter() - started


def raw_insert(path: Path, bodies: list[bytes]) -> float:
    """Seconds to decode and insert every batch into a plain table with no index but its key
    (the ingest baseline before issue 19), one transaction each."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute(
            "CREATE TABLE raw (seq INTEGER PRIMARY KEY, event_id TEXT, event_type TEXT, "
            "subject TEXT, properties TEXT)"
        )
        started = time.perf_counter()
        for body in bodies:
            events = msgspec.json.decode(body)["events"]
            raw.execute("BEGIN")
            raw.executemany(
                "INSERT INTO raw (event_id, event_type, subject, properties) VALUES (?, ?, ?, ?)",
                [
                    (
                        e["event_id"],
                        e["event_type"],
                        e["subject"]["subject_id"],
                        msgspec.json.encode(e["properties"]).decode(),
                    )
                    for e in events
                ],
            )
            raw.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        raw.close()
