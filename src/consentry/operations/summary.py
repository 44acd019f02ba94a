"""The compliance summary: a composition of sections, each one function over one reading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import compliance, policy
from consentry.consent.models import ComplianceStatus, Purpose, State, SubjectConsent
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import InvalidWindow
from consentry.operations import figures
from consentry.storage import compliance as sql
from consentry.storage.engine import Store
from consentry.subjects.models import Jurisdiction

# A daily series longer than this is refused: ten years of points is already a large answer.
MAX_SERIES_DAYS = 3660
_COVERAGE_KEYS = ("granted", "denied", "withdrawn", "expired", "never_asked")


@dataclass(frozen=True, slots=True)
class Window:
    """The days counted: from `first` to `last` (UTC days, both included; None: open)."""

    first: date | None
    last: date | None


def window(start: datetime | None, end: datetime | None) -> Window:
    """The whole UTC days a `?from=&to=` window touches (counts are kept per day);
    InvalidWindow when `from` is after `to`."""
    if start is not None and end is not None and start > end:
        raise InvalidWindow("`from` must not be after `to`")
    return Window(
        start.astimezone(UTC).date() if start else None,
        end.astimezone(UTC).date() if end else None,
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """What every section reads: one read transaction, the purposes, now, the window, and
    how many subjects there are (counted once)."""

    conn: Connection
    purposes: dict[str, Purpose]
    now: datetime
    window: Window
    subjects: int
    rotation_days: int


def coverage(r: Reading) -> dict[str, dict[str, int]]:
    """Per consent-based purpose, subjects by their current state (a grant past its expiry is
    expired; erased subjects are not counted)."""
    every, erased = sql.coverage(r.conn, r.now)
    people = r.subjects - sql.erased_count(r.conn)
    out = {
        key: dict.fromkeys(_COVERAGE_KEYS, 0)
        for key, p in sorted(r.purposes.items())
        if p.needs_consent
    }
    for purpose, state, n in every:
        if state in out.get(purpose, {}):
            out[purpose][state] += n
    for purpose, state, lapsed, n in erased:
        key = "expired" if state == "granted" and lapsed else str(state)
        if key in out.get(purpose, {}):
            out[purpose][key] -= int(n)
    for counts in out.values():
        counts["never_asked"] = people - sum(counts.values())
    return out


def status_counts(r: Reading) -> dict[str, int]:
    """Subjects per compliance status. Stored statuses are valid now (`summary` computed
    the stale ones again first); a subject with none never had a consent write or mark, so
    its status is that of a subject with no history in its jurisdiction."""
    out = dict.fromkeys((s.value for s in ComplianceStatus), 0)
    stored, rated = sql.status_counts(r.conn, compliance.basis(r.purposes))
    for status, n in stored.items():
        out[status] = out.get(status, 0) + n
    blank = {j: _blank(r, j) for j in (None, *(j.value for j in Jurisdiction))}
    unrated = r.subjects - rated
    if unrated and len(set(blank.values())) == 1:
        out[blank[None].value] += unrated
    elif unrated:
        # Only the jurisdiction tells them apart (the CCPA's opt-out model): count by it.
        for jurisdiction, n in sql.unrated(r.conn).items():
            out[blank.get(jurisdiction, blank[None]).value] += n
    return out


def _blank(r: Reading, jurisdiction: str | None) -> ComplianceStatus:
    state = SubjectConsent(subject_id="", jurisdiction=jurisdiction)
    return compliance.assess("", state, r.purposes, r.now).status


def events(r: Reading) -> dict[str, Any]:
    """Events accepted, and refused per code, on the window's days."""
    accepted = 0
    rejected: dict[str, int] = {}
    for outcome, code, n in sql.event_totals(r.conn, *_days(r.window)):
        if outcome == "accepted":
            accepted += int(n)
        else:
            rejected[str(code)] = rejected.get(str(code), 0) + int(n)
    return {"accepted": accepted, "rejected": dict(sorted(rejected.items()))}


def since(r: Reading) -> str | None:
    """The start of the first day counted: the window's, or without `from` the first day
    with counts, of events or of consent changes (None before any)."""
    first = r.window.first or _first_counted(r.conn)
    return None if first is None else clock.rfc3339(_midnight(first))


def _first_counted(conn: Connection) -> date | None:
    """The first day ingest counted events or a consent change was counted for."""
    found = [day for day in (sql.first_day(conn), sql.first_consent_day(conn)) if day]
    return date.fromisoformat(min(found)) if found else None


# A ledger entry's state -> the series point's key: a lapsed grant is no opt-out.
_SERIES_KEYS = {
    State.GRANTED.value: "grants",
    State.EXPIRED.value: "expiries",
} | {state.value: "opt_outs" for state in policy.OPTED_OUT_STATES}


def series(r: Reading) -> list[dict[str, Any]]:
    """One point per day of the window (without bounds: from the first day counted to
    today): events accepted and refused, consent grants, opt-outs (denials, withdrawals) and
    expiries (grants lapsed that day) recorded."""
    first = r.window.first or _first_counted(r.conn) or r.now.date()
    last = r.window.last or r.now.date()
    if (last - first).days >= MAX_SERIES_DAYS:
        raise InvalidWindow(f"a daily series covers at most {MAX_SERIES_DAYS} days")
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    events: dict[str, dict[str, int]] = {d: {"accepted": 0, "rejected": 0} for d in days}
    changes: dict[str, dict[str, int]] = {
        d: {"grants": 0, "opt_outs": 0, "expiries": 0} for d in days
    }
    for day, outcome, n in sql.event_days(r.conn, first.isoformat(), last.isoformat()):
        if day in events:
            events[day][str(outcome)] += int(n)
    for day, state, n in sql.consent_days(r.conn, first.isoformat(), last.isoformat()):
        if day in changes and state in _SERIES_KEYS:
            changes[day][_SERIES_KEYS[state]] += int(n)
    return [{"day": d, "events": events[d], **changes[d]} for d in days]


def processed_without_consent(r: Reading) -> int:
    """Deliveries and reads stopped at the moment of use for want of consent (must be 0)."""
    return figures.processed_without_consent(r.conn).total


def requests(r: Reading) -> dict[str, Any]:
    """Open data-subject requests, those past their due date, the open ones by type, and
    those completed (ever) by type."""
    by_type = figures.requests_open(r.conn)
    return {
        "open": sum(by_type.values()),
        "overdue": figures.requests_overdue(r.conn, r.now),
        "by_type": dict(sorted(by_type.items())),
        "completed": dict(sorted(figures.requests_completed(r.conn).items())),
    }


def deliveries(r: Reading) -> dict[str, Any]:
    """Over every system: deliveries waiting (or being sent) and dead-lettered now, and the
    events never delivered, ever, per reason (transfer_blocked, dpa_missing, ...)."""
    outbox = figures.deliveries(r.conn)
    refused: dict[str, int] = {}
    for reasons in figures.delivery_refusals(r.conn).values():
        for reason, n in reasons.items():
            refused[reason] = refused.get(reason, 0) + n
    return {
        "pending": sum(outbox.pending.values()),
        "dead": sum(outbox.dead.values()),
        "refused": dict(sorted(refused.items())),
    }


def keys(r: Reading) -> dict[str, Any]:
    """Whole days since the master and the active signing key were made (null: none yet),
    and the keys due for rotation (CONSENTRY_KEY_ROTATION_DAYS)."""
    ages = figures.key_ages(r.conn, r.now)
    return {
        "master_age_days": _days_of(ages.get("master")),
        "signing_age_days": _days_of(ages.get("signing")),
        "rotation_due": figures.keys_due(r.conn, r.now, r.rotation_days),
    }


def incidents(r: Reading) -> dict[str, Any]:
    """Open incidents and the nearest authority deadline not yet met (null: none runs)."""
    left = figures.incident_deadline_seconds(r.conn, r.now)
    at = None if left is None else r.now + timedelta(seconds=left)
    return {
        "open": figures.incidents_open(r.conn),
        "next_deadline": None if at is None else clock.rfc3339(at),
    }


def reconsent_due(r: Reading) -> dict[str, Any]:
    """Subjects to ask again for consent (a grant of theirs lapsed): in all, and per consent
    purpose."""
    per, people = sql.reconsent_due(r.conn, r.now)
    asked = [k for k, p in sorted(r.purposes.items()) if p.needs_consent]
    return {"subjects": people, "by_purpose": {k: per.get(k, 0) for k in asked}}


# The summary's sections in answer order: one line each.
SECTIONS: tuple[tuple[str, Callable[[Reading], Any]], ...] = (
    ("coverage", coverage),
    ("status_counts", status_counts),
    ("events", events),
    ("processed_without_consent", processed_without_consent),
    ("requests", requests),
    ("deliveries", deliveries),
    ("keys", keys),
    ("incidents", incidents),
    ("reconsent_due", reconsent_due),
    ("since", since),
)


def summary(
    store: Store,
    registry: PurposeRegistry,
    start: datetime | None,
    end: datetime | None,
    *,
    daily: bool,
    rotation_days: int,
) -> dict[str, Any]:
    """The compliance summary over the window from `start` to `end`; `daily` adds `series`."""
    span = window(start, end)
    now = clock.now()
    with store.read() as conn:
        purposes = registry.all(conn)
    compliance.refresh_stale(store, purposes, now)
    with store.read() as conn:
        reading = Reading(conn, purposes, now, span, sql.subject_count(conn), rotation_days)
        out = {name: section(reading) for name, section in SECTIONS}
        if daily:
            out["series"] = series(reading)
    return out


def _days(w: Window) -> tuple[str | None, str | None]:
    return (w.first.isoformat() if w.first else None, w.last.isoformat() if w.last else None)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _days_of(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds // 86_400)
