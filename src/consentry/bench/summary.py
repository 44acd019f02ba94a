"""The benchmark's summary section: GET /v1/compliance/summary's work over a large store
(100,000 subjects and 1,000,000 events in full), loaded directly in the shape the write path
keeps it, next to customers recorded through the real consent calls."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from consentry import clock
from consentry.bench.data import World
from consentry.consent import compliance
from consentry.consent.models import PurposeState, Source, State, SubjectConsent
from consentry.ingest.minimise import subject_key
from consentry.operations import summary as summary_module
from consentry.storage import compliance as sql
from consentry.storage import ingest as ingest_sql

_CHUNK = 20_000
RUNS = 9
DAYS = 30


def _state(n: int, subject_id: str, at: Any) -> SubjectConsent:
    """A mix: granted some, granted all, denied, lapsed, withdrawn, US-CA never asked."""
    kind = n % 10
    lapsed = at - timedelta(days=1)
    later = at + timedelta(days=395 - n % 300)

    def ps(state: State, expires: Any = None) -> PurposeState:
        return PurposeState(state, at - timedelta(days=400), expires, Source.WEB, None, False)

    purposes: dict[str, PurposeState] = {}
    if kind < 4:
        purposes = {
            "analytics": ps(State.GRANTED, later),
            "personalization": ps(State.GRANTED, later),
        }
    elif kind == 4:
        purposes = {
            k: ps(State.GRANTED, later)
            for k in (
                "analytics",
                "personalization",
                "marketing",
                "advertising",
                "location",
                "third_party_sharing",
            )
        }
    elif kind == 5:
        purposes = {"analytics": ps(State.DENIED), "marketing": ps(State.DENIED)}
    elif kind == 6:
        purposes = {"analytics": ps(State.GRANTED, lapsed)}
    elif kind == 7:
        purposes = {"analytics": ps(State.WITHDRAWN), "personalization": ps(State.GRANTED, later)}
    jurisdiction = "US-CA" if kind == 8 else "UK"
    return SubjectConsent(subject_id, len(purposes), purposes, jurisdiction=jurisdiction)


def _load(world: World, subjects: int, events: int) -> None:
    rt = world.runtime
    now = clock.now()
    with rt.store.read() as conn:
        purposes = rt.purposes.all(conn)
    basis = compliance.basis(purposes)
    stamp = clock.rfc3339(now)
    for start in range(0, subjects, _CHUNK):
        people: list[dict[str, Any]] = []
        ledger: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        status: list[dict[str, Any]] = []
        for n in range(start, min(subjects, start + _CHUNK)):
            subject_id = f"sub_{n:015x}"
            state = _state(n, subject_id, now)
            people.append(
                {
                    "subject_id": subject_id,
                    "created_at": now,
                    "consent_version": state.version,
                    "jurisdiction": state.jurisdiction,
                }
            )
            for version, (key, p) in enumerate(sorted(state.purposes.items()), start=1):
                entry = {
                    "subject_id": subject_id,
                    "purpose": key,
                    "state": p.state.value,
                    "expires_at": p.expires_at,
                    "version": version,
                }
                current.append(entry)
                day = now - timedelta(days=n % DAYS)
                ledger.append(
                    entry | {"source": "web", "at": day, "explicit": False, "actor": "bench"}
                )
            if n % 10 != 9:  # every tenth never met the consent path: counted as unrated
                found = compliance.assess(subject_id, state, purposes, now)
                status.append(
                    {
                        "subject_id": subject_id,
                        "status": found.status.value,
                        "version": found.version,
                        "basis": basis,
                        "changes_at": found.changes_at,
                    }
                )
        deltas: dict[tuple[str, str, int], int] = defaultdict(int)
        for row in current:
            deltas[(sql.COVERAGE + row["purpose"], row["state"], sql.shard(row["subject_id"]))] += 1
        for row in ledger:
            day = sql.CONSENTS + row["at"].date().isoformat()
            deltas[(day, row["state"], sql.shard(row["subject_id"]))] += 1
        for row in status:
            deltas[(sql.STATUS + basis, row["status"], sql.shard(row["subject_id"]))] += 1
        with rt.store.write() as conn:
            sql.add_tallies(conn, deltas)
            sql.load_rows(conn, "subjects", people)
            sql.load_rows(conn, "consent_ledger", ledger)
            sql.load_rows(conn, "consent_current", current)
            sql.load_rows(conn, "subject_status", status)
    per_day = events // DAYS
    day_counts = {("accepted", ""): per_day * 9 // 10}
    day_counts |= {("rejected", code): per_day // 20 for code in ("no_consent", "invalid_event")}
    # Added to what other sections of the same run counted (the ingest beside the retention
    # sweep counts today's events), as the pipeline adds its batches' counts.
    with rt.store.write() as conn:
        for d in range(DAYS):
            sql.add_event_counts(conn, (now - timedelta(days=d)).date().isoformat(), day_counts)
    for start in range(0, events, _CHUNK * 5):
        rows = []
        for n in range(start, min(events, start + _CHUNK * 5)):
            subject_id = f"sub_{(n * 7919) % subjects:015x}"
            rows.append(
                (
                    f"s-{n}",
                    "page_view",
                    1,
                    stamp,
                    stamp,
                    subject_id,
                    '["analytics"]',
                    "{}",
                    None,
                    None,
                    1,
                    subject_key(subject_id),
                )
            )
        with rt.store.write() as conn:
            ingest_sql.insert_events(conn, rows)


def summary(world: World, subjects: int, events: int) -> dict[str, Any]:
    rt = world.runtime
    started = time.perf_counter()
    _load(world, subjects, events)
    loaded = time.perf_counter() - started
    timings, series = [], []
    body: dict[str, Any] = {}
    for _ in range(RUNS):
        t0 = time.perf_counter()
        body = summary_module.summary(
            rt.store, rt.purposes, None, None, daily=False, rotation_days=90
        )
        timings.append((time.perf_counter() - t0) * 1000)
    window = clock.now() - timedelta(days=DAYS)
    for _ in range(3):
        t0 = time.perf_counter()
        summary_module.summary(
            rt.store,
            rt.purposes,
            window,
            None,
            daily=True,
            rotation_days=rt.settings.key_rotation_days,
        )
        series.append((time.perf_counter() - t0) * 1000)
    return {
        "subjects": subjects + len(world.subject_ids),
        "events": events,
        "load_s": round(loaded, 1),
        "counted_subjects": sum(body["status_counts"].values()),
        "summary_ms": round(statistics.median(timings), 1),
        "summary_max_ms": round(max(timings), 1),
        "summary_series_ms": round(statistics.median(series), 1),
    }
