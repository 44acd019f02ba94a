"""`/metrics` in the Prometheus text format: the counters of every worker process, summed, and
the figures read from the database at scrape time (which every worker reads alike, so they are
never counted twice)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection

from consentry.operations import counters, figures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Figures(Collector):
    """The database's figures as metric families, read once per scrape."""

    def __init__(self, conn: Connection, now: datetime, purge_hours: int) -> None:
        self._conn = conn
        self._now = now
        self._purge_hours = purge_hours

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        conn, now = self._conn, self._now
        stopped = figures.processed_without_consent(conn)
        family = CounterMetricFamily(
            "consentry_processed_without_consent",
            "Deliveries and reads that found no valid consent at the moment of use (stopped "
            "there; must stay 0).",
        )
        family.add_metric([], stopped.total)
        yield family
        yield _gauge(
            "consentry_requests_open",
            "Open data-subject requests by type.",
            "type",
            figures.requests_open(conn),
        )
        yield _gauge(
            "consentry_requests_overdue",
            "Open data-subject requests past their due date.",
            None,
            figures.requests_overdue(conn, now),
        )
        yield _gauge(
            "consentry_request_acknowledgements_due",
            "US-CA requests whose acknowledgement is due within a day (or was).",
            None,
            figures.acknowledgements_due(conn, now),
        )
        yield _gauge(
            "consentry_withdrawal_purge_overdue",
            "Withdrawals older than the purge deadline not yet purged.",
            None,
            figures.withdrawal_purge_overdue(conn, now, self._purge_hours),
        )
        yield _gauge(
            "consentry_topic_purges_waiting",
            "Stream mode: erasures and withdrawal purges waiting for a subject's records on a "
            "consented topic to pass its retention.",
            None,
            figures.topic_purges_waiting(conn, now),
        )
        yield _gauge(
            "consentry_rights_acknowledgements_overdue",
            "Rights notices to systems past their acknowledgement date.",
            None,
            figures.rights_acks_overdue(conn, now),
        )
        outbox = figures.deliveries(conn)
        yield _gauge(
            "consentry_deliveries_pending",
            "Deliveries waiting or being sent, per system.",
            "system_id",
            outbox.pending,
        )
        yield _gauge(
            "consentry_deliveries_dead",
            "Dead-lettered deliveries, per system.",
            "system_id",
            outbox.dead,
        )
        yield _gauge(
            "consentry_audit_entries",
            "Entries in the audit log.",
            None,
            figures.audit_entries(conn),
        )
        yield _gauge(
            "consentry_key_age_seconds",
            "Seconds since the master key and the active signing key were made.",
            "key",
            figures.key_ages(conn, now),
        )
        misclassified = CounterMetricFamily(
            "consentry_misclassified_values",
            "Values of fields declared non-personal in which ingest found personal data and "
            "redacted it before storage, by event type and field (a schema to correct).",
            labels=["event_type", "field"],
        )
        for found in figures.misclassified(conn):
            misclassified.add_metric([found.event_type, found.field], found.n)
        yield misclassified
        recorded = CounterMetricFamily(
            "consentry_incidents_recorded", "Incidents recorded in the breach register."
        )
        recorded.add_metric([], figures.incidents_recorded(conn))
        yield recorded
        yield _gauge(
            "consentry_incidents_open",
            "Open incidents in the breach register.",
            None,
            figures.incidents_open(conn),
        )
        deadline = GaugeMetricFamily(
            "consentry_incident_deadline_seconds",
            "Seconds to the nearest authority deadline of an open incident not yet notified "
            "(negative once passed; absent when none runs).",
        )
        left = figures.incident_deadline_seconds(conn, now)
        if left is not None:
            deadline.add_metric([], left)
        yield deadline
        yield _gauge(
            "consentry_assessments_overdue",
            "Impact assessments required and not approved for 30 days or more.",
            None,
            figures.assessments_overdue(conn, now),
        )
        yield _gauge(
            "consentry_dpf_expiring",
            "Systems whose DPF certification ends within 30 days (1 each).",
            "system_id",
            dict.fromkeys(figures.dpf_expiring(conn, now), 1),
        )


def _gauge(
    name: str,
    documentation: str,
    label: str | None,
    value: int | float | dict[str, int] | dict[str, float],
) -> GaugeMetricFamily:
    if label is None:
        if isinstance(value, dict):
            raise TypeError("a labelled figure needs its label")
        return GaugeMetricFamily(name, documentation, value=value)
    family = GaugeMetricFamily(name, documentation, labels=[label])
    if not isinstance(value, dict):
        raise TypeError("an unlabelled figure has no label")
    for key, n in sorted(value.items()):
        family.add_metric([key], n)
    return family


def render(conn: Connection, now: datetime, purge_hours: int) -> bytes:
    """The scrape: the process counters, then the figures read from `conn`."""
    own = generate_latest(counters.process_registry())
    read = CollectorRegistry(auto_describe=False)
    read.register(_Figures(conn, now, purge_hours))
    return own + generate_latest(read)
