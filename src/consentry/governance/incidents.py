"""The breach register (Art. 33(5)): incidents recorded with their deadlines and the number of
subjects affected, append-only notifications, closing; every step audited, free text sealed."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import (
    DelayReasonsRequired,
    IncidentClosed,
    IncidentNotFound,
    InvalidNotification,
    LateReasonRequired,
    NotNotifiableReasonRequired,
    UnknownNotificationRecipient,
    UnknownSystem,
)
from consentry.governance import affected as affected_of
from consentry.governance import breach
from consentry.governance.datamap import DataMap
from consentry.governance.models import NewIncident, NewNotification, Notice, Recipient, Risk, Role
from consentry.keys.envelope import Sealer
from consentry.storage import incidents as sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.resolve import Subjects

INCIDENT_ID = re.compile(r"inc_[0-9a-f]{24}")
# Staff's free text: sealed, never in the audit log.
TEXTS = (
    "description",
    "facts",
    "likely_consequences",
    "measures",
    "dpo_contact",
    "not_notifiable_reason",
)


class Incidents:
    """The register. `file_key`: the key-encryption key is the development file in the data
    directory, so an incident that touches that directory compromises it (API.md, Keys)."""

    def __init__(
        self,
        store: Store,
        key: bytes,
        datamap: DataMap,
        purposes: PurposeRegistry,
        subjects: Subjects,
        *,
        file_key: bool,
    ) -> None:
        self.store = store
        self._sealer = Sealer(key)
        self.datamap = datamap
        self.purposes = purposes
        self.subjects = subjects
        self.file_key = file_key

    def create(self, new: NewIncident, *, actor: str) -> dict[str, Any]:
        now = clock.now()
        breach.check_times(new.detected_at, new.aware_at, new.window, now)
        if (
            new.risk is Risk.NONE
            and new.role is Role.CONTROLLER
            and not new.texts.get("not_notifiable_reason")
        ):
            raise NotNotifiableReasonRequired(
                "risk none (not notified to the authority) needs a not_notifiable_reason"
            )
        incident_id = "inc_" + secrets.token_hex(12)
        keys_reason = "reported" if new.keys_compromised else None
        if keys_reason is None and self.file_key and new.data_directory:
            keys_reason = "development_key_file"
        # Counted in a read transaction: a scan of the events must not hold the write lock
        # (on SQLite every other write would wait for it).
        with self.store.read() as conn:
            self._check_systems(conn, new.systems)
            named, unknown = affected_of.named(conn, self.subjects, new.subjects)
            affected = affected_of.count(
                conn,
                self.datamap.all(conn),
                self.purposes.all(conn),
                affected_of.Scope(new.systems, new.window, new.data_directory, named, unknown),
                now,
            )
        with self.store.write() as conn:
            # A system deleted meanwhile is unknown now.
            self._check_systems(conn, new.systems)
            record = {
                "nature": new.nature.value,
                "risk": new.risk.value,
                "controller_role": new.role.value,
                "data_categories": list(new.data_categories),
                "systems": list(new.systems),
                "window": None
                if new.window is None
                else {"from": clock.rfc3339(new.window[0]), "to": clock.rfc3339(new.window[1])},
                "data_directory": new.data_directory,
                "subjects_named": len(new.subjects),
                "subjects_estimate": new.subjects_estimate,
                "records_estimate": new.records_estimate,
                "keys_compromised": keys_reason is not None,
                "keys_compromised_reason": keys_reason,
                "data_encrypted": new.data_encrypted,
                "disproportionate_effort": new.disproportionate_effort,
                "high_risk_no_longer_likely": new.high_risk_no_longer_likely,
                "us_ca_residents": None
                if new.us_ca_residents is None
                else {
                    "count": new.us_ca_residents[0],
                    "acquired_unencrypted_or_with_key": new.us_ca_residents[1],
                },
                "affected": affected,
            }
            texts: dict[str, Any] = {k: v for k, v in new.texts.items() if v}
            texts["subject_ids"] = sorted(named)
            facts = breach.facts_of(
                new.detected_at, new.aware_at, record, bool(texts.get("measures"))
            )
            sql.insert_incident(
                conn,
                {
                    "incident_id": incident_id,
                    "status": sql.OPEN,
                    "created_at": now,
                    "detected_at": new.detected_at,
                    "aware_at": new.aware_at,
                    "authority_due_at": breach.authority_due(facts),
                    "record": json.dumps(record, sort_keys=True),
                    "sealed": self._seal(incident_id, texts),
                },
            )
            audit.record(
                conn,
                AuditAction.INCIDENT_CREATED,
                actor=actor,
                details={
                    "incident_id": incident_id,
                    "nature": new.nature.value,
                    "risk": new.risk.value,
                    "controller_role": new.role.value,
                    "systems": list(new.systems),
                    "affected": affected,
                    "keys_compromised": keys_reason is not None,
                },
            )
            return self._out(conn, _load(conn, incident_id))

    def _check_systems(self, conn: Connection, system_ids: Sequence[str]) -> None:
        systems = self.datamap.all(conn)
        for system_id in system_ids:
            if system_id not in systems:
                raise UnknownSystem(f"no system {system_id!r}", system_id=system_id)

    def get(self, incident_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return self._out(conn, _load(conn, incident_id))

    def listing(
        self, *, status: str | None, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the register and the position of its last item (None when it is short)."""
        with self.store.read() as conn:
            rows = sql.list_incidents(conn, status=status, after=after, limit=limit)
            notices = _notices_by_incident(conn, [r.incident_id for r in rows])
            items = [self._out(conn, r, notices.get(r.incident_id, [])) for r in rows]
        last = int(rows[-1].seq) if len(rows) == limit else None
        return items, last

    def notify(self, incident_id: str, new: NewNotification, *, actor: str) -> dict[str, Any]:
        """Record a notification (append-only); one after its deadline needs delay_reasons."""
        try:
            recipient = Recipient(new.to)
        except ValueError:
            raise UnknownNotificationRecipient(
                "to is one of " + ", ".join(r.value for r in Recipient)
            ) from None
        now = clock.now()
        if new.at > now:
            raise InvalidNotification("at is in the future", field="at", rule="in_future")
        with self.store.write() as conn:
            row = _load(conn, incident_id, lock=True)
            if row.status != sql.OPEN:
                raise IncidentClosed(f"incident {incident_id} is closed", incident_id=incident_id)
            if new.at < row.detected_at:
                raise InvalidNotification(
                    "at is before the breach was detected", field="at", rule="before_detected"
                )
            notices = _notices_by_incident(conn, [incident_id]).get(incident_id, [])
            # The deadlines read no free text.
            facts = breach.facts_of(row.detected_at, row.aware_at, json.loads(row.record), False)
            due = breach.due_for(recipient, facts, [_notice(n) for n in notices])
            late = breach.is_late(recipient, new.at, due)
            if late and not new.delay_reasons:
                raise DelayReasonsRequired(
                    f"the notice to {recipient.value} was due at {clock.rfc3339(due or now)}: "
                    "give delay_reasons",
                    due_at=clock.rfc3339(due or now),
                )
            sealed = {"reference": new.reference, "delay_reasons": list(new.delay_reasons)}
            sql.insert_notification(
                conn,
                {
                    "incident_id": incident_id,
                    "recipient": recipient.value,
                    "at": new.at,
                    "recorded_at": now,
                    "due_at": due,
                    "late": late,
                    "sealed": self._sealer.seal(
                        json.dumps(sealed, sort_keys=True).encode(), _notice_aad(incident_id)
                    ),
                },
            )
            audit.record(
                conn,
                AuditAction.INCIDENT_NOTIFIED,
                actor=actor,
                details={"incident_id": incident_id, "to": recipient.value, "late": late},
            )
            return self._out(conn, row)

    def close(self, incident_id: str, late_reason: str | None, *, actor: str) -> dict[str, Any]:
        """Close an incident; a notice given late, or owed and never given, needs late_reason."""
        now = clock.now()
        with self.store.write() as conn:
            row = _load(conn, incident_id, lock=True)
            if row.status != sql.OPEN:
                raise IncidentClosed(f"incident {incident_id} is closed", incident_id=incident_id)
            notices = _notices_by_incident(conn, [incident_id]).get(incident_id, [])
            texts = self._open(incident_id, bytes(row.sealed))
            facts = breach.facts_of(
                row.detected_at, row.aware_at, json.loads(row.record), bool(texts.get("measures"))
            )
            owed = breach.owed(facts, [_notice(n) for n in notices])
            late = any(bool(n.late) for n in notices)
            if (late or owed) and not late_reason:
                missing = ", ".join(r.value for r in owed) or "none"
                raise LateReasonRequired(
                    f"a notice was given late or not at all (not given: {missing}): "
                    "give late_reason"
                )
            if late_reason:
                texts["late_reason"] = late_reason
            values = {"closed_at": now, "sealed": self._seal(incident_id, texts)}
            if not sql.close_incident(conn, incident_id, values):
                raise IncidentClosed(f"incident {incident_id} is closed", incident_id=incident_id)
            audit.record(
                conn,
                AuditAction.INCIDENT_CLOSED,
                actor=actor,
                details={
                    "incident_id": incident_id,
                    "late": late,
                    "not_notified": [r.value for r in owed],
                },
            )
            return self._out(conn, _load(conn, incident_id))

    def _out(
        self, conn: Connection, row: AnyRow, notices: Sequence[AnyRow] | None = None
    ) -> dict[str, Any]:
        if notices is None:
            notices = _notices_by_incident(conn, [row.incident_id]).get(row.incident_id, [])
        record = json.loads(row.record)
        texts = self._open(row.incident_id, bytes(row.sealed))
        facts = breach.facts_of(row.detected_at, row.aware_at, record, bool(texts.get("measures")))
        given = [_notice(n) for n in notices]
        exemption = breach.exemption(facts, given) if facts.risk is Risk.HIGH else None
        present = {name: bool(texts.get(name)) for name in breach.CONTENTS}
        present["data_categories"] = bool(record["data_categories"])
        present["subjects_estimate"] = (
            record["subjects_estimate"] is not None or record["affected"] is not None
        )
        present["records_estimate"] = record["records_estimate"] is not None
        # The named subjects' ids stay sealed in the register; the record says how many.
        texts.pop("subject_ids", None)
        return {
            "incident_id": row.incident_id,
            "status": row.status,
            "created_at": clock.rfc3339(row.created_at),
            "closed_at": None if row.closed_at is None else clock.rfc3339(row.closed_at),
            "detected_at": clock.rfc3339(row.detected_at),
            "aware_at": clock.rfc3339(row.aware_at),
            **record,
            **{name: texts.get(name) for name in (*TEXTS, "late_reason")},
            "authority_due_at": _time(breach.authority_due(facts)),
            "controller_due": _time(breach.controller_due(facts)),
            "data_owner_due": _time(breach.data_owner_due(facts)),
            "us_ca_residents_due_at": _time(breach.us_ca_residents_due(facts)),
            "us_ca_ag_due_at": _time(breach.us_ca_ag_due(facts, given)),
            "subjects_notice_required": breach.subjects_notice_required(facts, given),
            "subjects_notice_exemption": None if exemption is None else exemption.value,
            "not_notified": [r.value for r in breach.owed(facts, given)],
            "to_complete": breach.to_complete(present),
            "notifications": [self._notification_out(n) for n in notices],
        }

    def _notification_out(self, row: AnyRow) -> dict[str, Any]:
        sealed = json.loads(self._sealer.open(bytes(row.sealed), _notice_aad(row.incident_id)))
        return {
            "to": row.recipient,
            "at": clock.rfc3339(row.at),
            "reference": sealed["reference"],
            "delay_reasons": sealed["delay_reasons"] or None,
            "due_at": _time(row.due_at),
            "late": bool(row.late),
            "recorded_at": clock.rfc3339(row.recorded_at),
        }

    def _seal(self, incident_id: str, texts: dict[str, Any]) -> bytes:
        return self._sealer.seal(json.dumps(texts, sort_keys=True).encode(), _aad(incident_id))

    def _open(self, incident_id: str, sealed: bytes) -> dict[str, Any]:
        return dict(json.loads(self._sealer.open(sealed, _aad(incident_id))))


def open_incidents(conn: Connection) -> int:
    """How many incidents are open (consentry_incidents_open, the summary)."""
    return sql.count_open(conn)


def recorded(conn: Connection) -> int:
    """How many incidents were ever recorded (consentry_incidents_recorded_total)."""
    return sql.count_all(conn)


def next_deadline(conn: Connection, now: datetime) -> datetime | None:
    """The nearest authority deadline of an open incident not yet notified by `now` (a passed
    one included), for consentry_incident_deadline_seconds and the summary."""
    return sql.next_authority_deadline(conn, now)


def count_created_since(conn: Connection, since: datetime) -> int:
    """How many incidents were recorded at or after `since` (the incident_created alert)."""
    return sql.count_created_since(conn, since)


def created_since(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Incidents recorded at or after `since`, oldest first, without their free text."""
    out = []
    for row in sql.created_since(conn, since):
        record = json.loads(row.record)
        out.append(
            {
                "incident_id": row.incident_id,
                "created_at": clock.rfc3339(row.created_at),
                "nature": record["nature"],
                "risk": record["risk"],
                "authority_due_at": _time(row.authority_due_at),
            }
        )
    return out


def _load(conn: Connection, incident_id: str, *, lock: bool = False) -> AnyRow:
    row = (
        sql.get_incident(conn, incident_id, lock=lock)
        if INCIDENT_ID.fullmatch(incident_id)
        else None
    )
    if row is None:
        raise IncidentNotFound(f"no incident {incident_id}", incident_id=incident_id)
    return row


def _notices_by_incident(conn: Connection, incident_ids: list[str]) -> dict[str, list[AnyRow]]:
    out: dict[str, list[AnyRow]] = {}
    for row in sql.notifications_of(conn, incident_ids):
        out.setdefault(row.incident_id, []).append(row)
    return out


def _notice(row: AnyRow) -> Notice:
    return Notice(Recipient(row.recipient), row.at)


def _time(value: datetime | None) -> str | None:
    return None if value is None else clock.rfc3339(value)


def _aad(incident_id: str) -> bytes:
    return b"consentry:incident:" + incident_id.encode()


def _notice_aad(incident_id: str) -> bytes:
    return b"consentry:incident-notice:" + incident_id.encode()
