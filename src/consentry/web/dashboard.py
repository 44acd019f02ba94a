"""The dashboard's view: the compliance summary (the same call `GET /v1/compliance/summary`
answers with, so the numbers agree), shaped for the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consentry import clock
from consentry.audit import heads
from consentry.audit.verify import last_verification
from consentry.dsr.deadlines import Standing, standing
from consentry.dsr.models import Request, Status
from consentry.governance.models import Refusal
from consentry.operations import figures, summary
from consentry.runtime import Runtime
from consentry.web import charts

# The charts' window: the last 30 days, today included.
SERIES_DAYS = 30
# Open requests the backlog lists (the nearest deadlines first); the counts cover them all.
BACKLOG_ROWS = 200
TRANSFER_BLOCKED = Refusal.TRANSFER_BLOCKED.value
# Open requests that may be waiting for downstream systems' acknowledgements.
WAITING = frozenset({Status.AWAITING_DOWNSTREAM, Status.OVERDUE})


@dataclass(frozen=True, slots=True)
class Delivery:
    """A system's deliveries: waiting or being sent, given up, and events not delivered
    (those a transfer rule blocked, and for any reason)."""

    system_id: str
    pending: int
    dead: int
    transfer_blocked: int
    refused: int


# An open incident's clocks: each deadline field of its record, whom it is owed to, and
# the recipients (breach.owed) whose notice stops it.
CLOCKS = (
    ("authority_due_at", "Supervisory authority (Art. 33(1))", {"authority"}),
    ("controller_due", "Controller (Art. 33(2))", {"controller"}),
    ("data_owner_due", "Owner of the data (Cal. Civ. Code 1798.82(b))", {"data_owner"}),
    ("us_ca_residents_due_at", "California residents (1798.82(a))", {"subjects", "public"}),
    ("us_ca_ag_due_at", "California Attorney General (1798.82(f))", {"ca_attorney_general"}),
)
# Open incidents the dashboard lists.
INCIDENT_ROWS = 50


@dataclass(frozen=True, slots=True)
class Clock:
    """A deadline still running: to whom, when, and the time left as the page first shows
    it (static/countdown.js keeps it going)."""

    label: str
    due: str
    left: str


@dataclass(frozen=True, slots=True)
class IncidentClocks:
    incident_id: str
    nature: str
    risk: str
    clocks: list[Clock]


@dataclass(frozen=True, slots=True)
class Row:
    """An open request as the backlog lists it: its standing, and the systems that have
    not acknowledged its notices."""

    request: Request
    standing: Standing
    unanswered: list[str]
    # The consented topics it waits for (`topic`, `until`: the subject's records there past
    # the topic's retention).
    topics: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Backlog:
    """Open requests by type and standing, and the first BACKLOG_ROWS of them."""

    counts: dict[str, dict[str, int]]
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Coverage:
    purpose: str
    counts: dict[str, int]
    granted_share: str  # "42.0%", or "n/a" before anyone is counted


def view(runtime: Runtime) -> dict[str, Any]:
    """Everything the dashboard shows, from one summary over the last SERIES_DAYS days."""
    now = clock.now()
    start = now - timedelta(days=SERIES_DAYS - 1)
    data = summary.summary(
        runtime.store,
        runtime.purposes,
        start,
        None,
        daily=True,
        rotation_days=runtime.settings.key_rotation_days,
    )
    points = data["series"]
    days = [p["day"] for p in points]
    grants = sum(p["grants"] for p in points)
    opt_outs = sum(p["opt_outs"] for p in points)
    consent_lines = [
        charts.Line("Grants", [p["grants"] for p in points]),
        charts.Line("Opt-outs", [p["opt_outs"] for p in points]),
        charts.Line("Expiries", [p["expiries"] for p in points]),
    ]
    event_lines = [
        charts.Line("Accepted", [p["events"]["accepted"] for p in points]),
        charts.Line("Refused", [p["events"]["rejected"] for p in points]),
    ]
    with runtime.store.read() as conn:
        outbox = figures.deliveries(conn)
        refused = figures.delivery_refusals(conn)
        head = heads.latest(conn)
        verification = last_verification(conn)
        entries = figures.audit_entries(conn)
        counts = figures.backlog(conn, now)
        found = figures.misclassified(conn)
    systems = sorted(set(outbox.pending) | set(outbox.dead) | set(refused))
    return {
        "summary": data,
        "backlog": backlog(runtime, now, counts),
        "deliveries": [
            Delivery(
                s,
                outbox.pending.get(s, 0),
                outbox.dead.get(s, 0),
                refused.get(s, {}).get(TRANSFER_BLOCKED, 0),
                sum(refused.get(s, {}).values()),
            )
            for s in systems
        ],
        "head": head,
        "verification": verification,
        "verified_ago": time_ago(verification.verified_at, now) if verification else None,
        "incidents": incident_clocks(runtime, now),
        "assessments": assessment_rows(runtime),
        "audit_entries": entries,
        "misclassified": [
            {
                "event_type": m.event_type,
                "field": m.field,
                "n": m.n,
                "first_seen": time_ago(m.first_seen_at, now),
                "last_seen": time_ago(m.last_seen_at, now),
            }
            for m in found
        ],
        "coverage": [_coverage(k, v) for k, v in data["coverage"].items()],
        "opt_out_rate": _share(opt_outs, grants + opt_outs),
        "grants": grants,
        "opt_outs": opt_outs,
        "days": days,
        "consent_chart": charts.lines("consent", "Consent changes per day", days, consent_lines),
        "consent_legend": charts.legend(consent_lines),
        "consent_lines": consent_lines,
        "event_chart": charts.lines("events", "Events per day", days, event_lines),
        "event_legend": charts.legend(event_lines),
        "event_lines": event_lines,
    }


def _coverage(purpose: str, counts: dict[str, int]) -> Coverage:
    return Coverage(purpose, counts, _share(counts["granted"], sum(counts.values())))


def _share(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{100 * part / whole:.1f}%"


def backlog(runtime: Runtime, now: datetime, counts: dict[str, dict[str, int]]) -> Backlog:
    """The request backlog as the dashboard shows it: `counts` per type, on track / due within
    5 days / overdue (operations/figures.backlog), and the open requests nearest their
    deadline, each stood by dsr/deadlines.standing."""
    requests = runtime.requests.backlog(BACKLOG_ROWS)
    # Only a request that has sent notices waits for acknowledgements.
    ids = [r.request_id for r in requests if r.status in WAITING]
    unanswered = runtime.requests.unanswered(ids)
    topics = runtime.requests.topics_waiting(ids)
    rows = [
        Row(
            r,
            standing(r.due_at, now, marked_overdue=r.status is Status.OVERDUE),
            unanswered.get(r.request_id, []),
            topics.get(r.request_id, []),
        )
        for r in requests
    ]
    return Backlog(counts, rows)


def incident_clocks(runtime: Runtime, now: datetime) -> list[IncidentClocks]:
    """Open incidents with the deadlines whose notice has not been given (the register's
    own `not_notified`), nearest first within each."""
    items, _ = runtime.incidents.listing(status="open", after=0, limit=INCIDENT_ROWS)
    out = []
    for item in items:
        owed = set(item["not_notified"])
        clocks = [
            Clock(label, item[field], time_left(datetime.fromisoformat(item[field]), now))
            for field, label, recipients in CLOCKS
            if item.get(field) and owed & recipients
        ]
        clocks.sort(key=lambda c: c.due)
        out.append(IncidentClocks(item["incident_id"], item["nature"], item["risk"], clocks))
    return out


def assessment_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """The impact assessments, those required first, the highest score first within each."""
    items = runtime.assessments.listing()
    return sorted(items, key=lambda a: (not a["required"], -a["score"], a["assessment_id"]))


def _span(seconds: int) -> str:
    """ "3 d 4 h 5 min" (whole minutes; days only when there are some)."""
    days, rest = divmod(abs(seconds) // 60, 24 * 60)
    hours, mins = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours} h {mins} min"


def time_ago(then: datetime, now: datetime) -> str:
    """ "3 d 4 h 5 min ago" (a moment ahead of `now`, clocks out of step: "0 h 0 min ago")."""
    return f"{_span(max(0, int((now - then).total_seconds())))} ago"


def time_left(due: datetime, now: datetime) -> str:
    """ "3 d 4 h 5 min left", or "overdue by ..." (static/countdown.js writes the same)."""
    seconds = int((due - now).total_seconds())
    return f"{_span(seconds)} left" if seconds >= 0 else f"overdue by {_span(seconds)}"
