"""Alerts without Prometheus: each rule is one figure (operations/figures.py) that must stay 0;
an evaluator reads them every few seconds and sends each change (firing, resolved) to
`CONSENTRY_ALERT_WEBHOOK` in Alertmanager's webhook format. The state of every alert is kept
in the database and changed under the writer's lock (the figures are read before it is
taken), so with several processes each change is sent once; a send that fails is tried again
at the next evaluation, and one whose sender died once its claim has run out. In `consentry
serve` one process at a time evaluates, the holder of the job's lease (storage/leases.py).
`docs/alerts.yml` holds the same rules for Prometheus."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.operations import figures
from consentry.periodic import Lease, Periodic
from consentry.settings import Settings
from consentry.storage import operations as sql
from consentry.storage.engine import AnyRow, Store

log = logging.getLogger(__name__)

PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"
# Alertmanager's "no end yet".
_NO_END = "0001-01-01T00:00:00Z"

Figure = Callable[[Connection, datetime, Settings], float]


@dataclass(frozen=True, slots=True)
class Rule:
    """An alert: fires once `figure` has been above 0 for `hold`, resolves when it is 0."""

    name: str
    severity: str
    summary: str
    figure: Figure
    hold: timedelta = timedelta(0)


RULES: tuple[Rule, ...] = (
    Rule(
        "processed_without_consent",
        "critical",
        "A delivery or a read found no valid consent at the moment of use (stopped there).",
        lambda c, n, s: figures.processed_without_consent_recent(c, n),
        timedelta(seconds=5),
    ),
    Rule(
        "request_overdue",
        "critical",
        "Data-subject requests are past their legal deadline.",
        lambda c, n, s: figures.requests_overdue(c, n),
    ),
    Rule(
        "request_ack_due",
        "warning",
        "US-CA requests must be acknowledged within a day (regs §7021).",
        lambda c, n, s: figures.acknowledgements_due(c, n),
    ),
    Rule(
        "withdrawal_purge_overdue",
        "critical",
        "Withdrawn data is past its purge deadline.",
        lambda c, n, s: figures.withdrawal_purge_overdue(c, n, s.withdrawal_purge_hours),
    ),
    Rule(
        "rights_ack_overdue",
        "warning",
        "Systems have not acknowledged rights notices in time.",
        lambda c, n, s: figures.rights_acks_overdue(c, n),
    ),
    Rule(
        "incident_created",
        "critical",
        "A personal data breach was recorded: its notification clock runs (Art. 33).",
        lambda c, n, s: figures.incidents_created_recent(c, n),
    ),
    Rule(
        "incident_deadline_near",
        "critical",
        "An open incident's notice to the supervisory authority is due within 12 hours.",
        lambda c, n, s: figures.incident_deadline_near(c, n),
    ),
    Rule(
        "key_rotation_due",
        "warning",
        "The master or signing key is older than CONSENTRY_KEY_ROTATION_DAYS.",
        lambda c, n, s: len(figures.keys_due(c, n, s.key_rotation_days)),
    ),
    Rule(
        "dpa_expiring",
        "warning",
        "A system's DPF certification ends within 30 days.",
        lambda c, n, s: len(figures.dpf_expiring(c, n)),
    ),
    Rule(
        "misclassified_values",
        "warning",
        "Personal data was found, and redacted, in a field declared non-personal: correct its "
        "schema.",
        lambda c, n, s: figures.misclassified_recent(c, n),
    ),
    Rule(
        "assessment_overdue",
        "warning",
        "An impact assessment has been required and not approved for 30 days (Art. 35).",
        lambda c, n, s: figures.assessments_overdue(c, n),
    ),
    Rule(
        "delivery_dead",
        "critical",
        "A system's deliveries gave up (dead-lettered).",
        lambda c, n, s: sum(figures.deliveries(c).dead.values()),
    ),
)

_ENCODE = msgspec.json.Encoder()


class Alerts:
    """`evaluate()` does one pass (for tests and commands); `start()` repeats it every
    `CONSENTRY_ALERT_INTERVAL_SECONDS` in a thread while a webhook is set."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        rules: tuple[Rule, ...] = RULES,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.rules = rules
        self._periodic = Periodic(
            "consentry-alerts", settings.alert_interval_seconds, self.evaluate, lease
        )
        self._client: httpx.Client | None = None
        # How long a change claimed for sending is left to its sender: longer than a send.
        self.claim = timedelta(seconds=settings.delivery_timeout_seconds * 2 + 30)

    def start(self) -> None:
        if self.settings.alert_webhook:
            self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()
        if self._client is not None:
            self._client.close()

    def evaluate(self) -> list[dict[str, Any]]:
        """Read every rule's figure, move the alerts' states on, and send what changed (and
        what failed to send before); returns the messages the webhook acknowledged."""
        now = clock.now()
        # The figures first, outside the writer's lock (a dozen counts, every few seconds in
        # every worker), with the states they were read beside; the lock only to move them on.
        with self.store.read() as conn:
            seen = {name: _version(row) for name, row in sql.alert_rows(conn).items()}
            values = {r.name: float(r.figure(conn, now, self.settings)) for r in self.rules}
        with self.store.write() as conn:
            sql.lock_alerts(conn)
            rows = sql.alert_rows(conn, lock=True)
            for rule in self.rules:
                row = rows.get(rule.name)
                # Another worker moved this alert on since our figures were read: its reading
                # is at least as recent, ours is left alone (the next pass reads again).
                if _version(row) == seen.get(rule.name):
                    _step(conn, rule, row, values[rule.name], now)
            # Claimed for sending here, for a while: another process leaves them alone until
            # then, and sends them after should this one die before it has.
            unsent = [r for r in sql.alert_rows(conn).values() if _free(r, now)]
            for row in unsent:
                sql.claim_alert(conn, row.name, now + self.claim)
        sent = []
        for row in unsent:
            message = self.message(row)
            done = self._post(message)
            with self.store.write() as conn:
                if done:
                    sql.sent_alert(conn, row.name, row.status, row.since)
                else:
                    sql.unclaim_alert(conn, row.name, row.status, row.since)
            if done:
                sent.append(message)
        return sent

    def message(self, row: AnyRow) -> dict[str, Any]:
        """Alertmanager's webhook body (version 4) for one alert's latest change."""
        rule = next(r for r in self.rules if r.name == row.name)
        labels = {"alertname": rule.name, "severity": rule.severity, "service": "consentry"}
        annotations = {"summary": rule.summary, "value": f"{row.value:g}"}
        group_labels = {"alertname": rule.name}
        return {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{rule.name}"}}',
            "truncatedAlerts": 0,
            "status": row.status,
            "receiver": "consentry",
            "groupLabels": group_labels,
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": self.settings.public_url,
            "alerts": [
                {
                    "status": row.status,
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": clock.rfc3339(row.starts_at),
                    "endsAt": clock.rfc3339(row.ends_at) if row.ends_at else _NO_END,
                    "generatorURL": "",
                    "fingerprint": hashlib.sha256(rule.name.encode()).hexdigest()[:16],
                }
            ],
        }

    def _post(self, message: dict[str, Any]) -> bool:
        if self._client is None:
            self._client = httpx.Client(timeout=self.settings.delivery_timeout_seconds)
        try:
            response = self._client.post(
                self.settings.alert_webhook,
                content=_ENCODE.encode(message),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("alert webhook unreachable: %s", type(exc).__name__)
            return False
        if response.is_success:
            return True
        log.warning("alert webhook answered %d", response.status_code)
        return False


def _free(row: AnyRow, now: datetime) -> bool:
    """Whether the alert's latest change is to be sent, and no live sender has it."""
    return not row.sent and (row.claimed_until is None or row.claimed_until <= now)


def _version(row: AnyRow | None) -> tuple[Any, ...] | None:
    """What changes whenever an evaluation moves an alert on (a claim or a failed send does
    not change it)."""
    return None if row is None else (row.status, row.since, row.updated_at)


def _step(conn: Connection, rule: Rule, row: AnyRow | None, value: float, now: datetime) -> None:
    """One alert's state after reading `value`: pending -> firing once held long enough;
    firing -> resolved at 0 (both to be sent); pending -> dropped at 0 (never sent)."""
    status = row.status if row is not None else RESOLVED
    change: dict[str, Any] | None = None
    if value > 0 and status == RESOLVED:
        change = {"status": PENDING, "since": now, "starts_at": None, "ends_at": None}
        status = PENDING
    if value > 0 and status == PENDING:
        since = change["since"] if change else row.since  # type: ignore[union-attr]
        if now - since >= rule.hold:
            change = {"status": FIRING, "since": since, "starts_at": since, "ends_at": None}
            change |= {"sent": False, "claimed_until": None}
    elif value <= 0 and status == FIRING:
        change = {
            "status": RESOLVED,
            "since": now,
            "ends_at": now,
            "sent": False,
            "claimed_until": None,
        }
    elif value <= 0 and status == PENDING:
        change = {"status": RESOLVED, "since": now, "sent": True}
    if change is None:
        if row is not None and row.value != value:
            sql.put_alert(conn, {"name": rule.name, "value": value, "updated_at": now}, exists=True)
        return
    values = {"name": rule.name, "value": value, "updated_at": now, "sent": True} | change
    sql.put_alert(conn, values, exists=row is not None)
