"""What each process counts as it works (events, checks, consent changes, deliveries, request
latency), in prometheus-client's counters. Under `consentry serve --workers N` each worker's
counts live in files of a directory made before the workers start (`PROMETHEUS_MULTIPROC_DIR`,
set by the serve command), and a scrape sums them; in one process they are held in memory.

Labels hold only purpose keys, system ids, reason and error codes, states and route templates:
never anything about a person."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "consentry_events",
    "Events received, by outcome (accepted, rejected) and refusal code.",
    ["outcome", "code"],
    registry=REGISTRY,
)
CONSENT_CHECKS = Counter(
    "consentry_consent_checks",
    "Consent checks answered (POST /v1/consents/check), by reason.",
    ["reason"],
    registry=REGISTRY,
)
CONSENT_CHANGES = Counter(
    "consentry_consent_changes",
    "Consent ledger entries written, by state.",
    ["state"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "consentry_deliveries",
    "Events handled by the delivery worker, by system and outcome (delivered, failed, dead, "
    "refused).",
    ["system_id", "outcome"],
    registry=REGISTRY,
)
STREAM_WITHHELD = Counter(
    "consentry_stream_withheld",
    "Stream mode: events stored but kept off a purpose's consented topic, by purpose and "
    "reason (no_consumer, or the delivery gate a consumer failed: transfer_blocked, ...).",
    ["purpose", "reason"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "consentry_request_duration_seconds",
    "HTTP request latency by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


def multiprocess() -> bool:
    """Whether this process writes its counts to the shared directory (a serve worker)."""
    return values.ValueClass is not values.MutexValue


def process_registry() -> CollectorRegistry:
    """What a scrape reads of the counters: every worker's summed, or this process's."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def count_events(results: Iterable[str | None]) -> None:
    """One batch's outcomes: None for an accepted event, else its refusal code."""
    for code, n in Tally(results).items():
        if code is None:
            EVENTS.labels("accepted", "").inc(n)
        else:
            EVENTS.labels("rejected", code).inc(n)


def count_check(reason: str) -> None:
    CONSENT_CHECKS.labels(reason).inc()


def count_changes(states: Iterable[str]) -> None:
    for state, n in Tally(states).items():
        CONSENT_CHANGES.labels(state).inc(n)


def count_deliveries(system_id: str, outcome: str, n: int) -> None:
    if n:
        DELIVERIES.labels(system_id, outcome).inc(n)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    LATENCY.labels(method, route, str(status)).observe(seconds)


def count_withheld(withheld: dict[tuple[str, str], int]) -> None:
    """(purpose, reason) -> the events of a batch kept off that purpose's consented topic."""
    for (purpose, reason), n in withheld.items():
        STREAM_WITHHELD.labels(purpose, reason).inc(n)
