"""The data map and delivery behind the downstream port of requests and consent changes
(dsr/downstream.py): pending deliveries cancelled from the outbox, rights notices queued to
every system that received the subject's data, consent updates to systems asking for them,
acknowledgements read from the notices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from consentry.consent.models import LedgerEntry, Purpose, SubjectConsent
from consentry.delivery import propagation
from consentry.delivery.notices import ACKNOWLEDGED, RightsNotices
from consentry.delivery.outbox import Outbox
from consentry.dsr.models import NoticeKind
from consentry.governance.datamap import DataMap
from consentry.governance.models import Mechanism, System
from consentry.storage import delivery as sql

# What an access report tells the subject of each recipient's transfer safeguard
# (Art. 15(2), Art. 44-49).
SAFEGUARDS = {
    Mechanism.NONE: "none needed: no transfer outside the exporter's area",
    Mechanism.ADEQUACY: "an adequacy decision for the recipient's region (Art. 45)",
    Mechanism.DPF: "the recipient's EU-US Data Privacy Framework certification (Art. 45)",
    Mechanism.SCC: "standard contractual clauses (Art. 46(2)(c))",
    Mechanism.BCR: "binding corporate rules (Art. 47)",
    Mechanism.UK_IDTA: "the UK international data transfer agreement (UK GDPR Art. 46)",
    Mechanism.UK_ADDENDUM: "the UK addendum to the standard contractual clauses (UK GDPR Art. 46)",
}


def safeguard(system: System) -> str:
    """The safeguard a system's transfers rely on, in words, with what makes it valid."""
    text = SAFEGUARDS[system.transfer_mechanism]
    if system.transfer_mechanism is Mechanism.DPF and system.dpf_certified_until is not None:
        text += f", certified until {system.dpf_certified_until.isoformat()}"
    if system.tia_ref and system.transfer_mechanism is not Mechanism.NONE:
        text += f"; transfer impact assessment {system.tia_ref}"
    return text


class DeliveryDownstream:
    """Requests reach downstream systems through the outbox and the rights notices."""

    def __init__(self, datamap: DataMap, outbox: Outbox, notices: RightsNotices) -> None:
        self.datamap = datamap
        self.outbox = outbox
        self.notices = notices

    def cancel_pending(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None, *, actor: str
    ) -> int:
        return self.outbox.cancel(conn, subject_id, purposes, actor=actor)

    def notify(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        request_id: str | None,
        purposes: Sequence[str] | None,
        actor: str,
        corrected: Sequence[tuple[str, str]] = (),
        jurisdiction: str | None = None,
        forward: bool = False,
    ) -> list[str]:
        sealer = self.outbox.subject_keys.sealer(conn, subject_id) if corrected else None
        # The systems come from what was queued: reading them back would read every notice
        # the subject ever had, inside the caller's (an opt-out's) write transaction.
        queued = self.notices.queue(
            conn,
            subject_id,
            kind,
            actor=actor,
            purposes=purposes,
            request_id=request_id,
            corrected=corrected,
            sealer=sealer,
            jurisdiction=jurisdiction,
            forward=forward,
        )
        return sorted({q.system_id for q in queued})

    def consent_changed(
        self,
        conn: Connection,
        state: SubjectConsent,
        entries: Sequence[LedgerEntry],
        purposes: Mapping[str, Purpose],
        *,
        actor: str,
    ) -> list[str]:
        return propagation.queue_updates(
            conn,
            self.datamap.all(conn),
            state,
            entries,
            purposes,
            self.outbox.exporter,
            actor=actor,
        )

    def acknowledgements(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        # A system has acknowledged when every notice of the request sent to it has: an
        # objection upheld for two purposes, or a restriction and its lifting, are two.
        sent: dict[str, list[dict[str, Any]]] = {}
        for notice in self.notices.of(conn, request_id=request_id):
            sent.setdefault(notice["system_id"], []).append(notice)
        out = []
        for system_id, notices in sorted(sent.items()):
            answered = all(n["status"] == ACKNOWLEDGED for n in notices)
            out.append(
                {
                    "system_id": system_id,
                    "kind": notices[-1]["type"],
                    "sent_at": notices[-1]["sent_at"],
                    # RFC 3339 in one width: text order is time order.
                    "acknowledged_at": (
                        max(n["acknowledged_at"] for n in notices) if answered else None
                    ),
                }
            )
        return out

    def notices_of(self, conn: Connection, request_id: str) -> list[dict[str, Any]]:
        return [
            {k: n[k] for k in ("notice_id", "system_id", "type", "status", "acknowledged_at")}
            | {"overdue": n["overdue"]}
            for n in self.notices.of(conn, request_id=request_id)
        ]

    def recipients(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        systems = self.datamap.all(conn)
        out = []
        for system_id, purposes in sorted(sql.recipients_of(conn, subject_id).items()):
            system = systems.get(system_id)
            # A system taken off the data map still holds what it received.
            out.append(
                {
                    "system_id": system_id,
                    "name": None if system is None else system.name,
                    "region": None if system is None else system.region.value,
                    "transfer_mechanism": (
                        None if system is None else system.transfer_mechanism.value
                    ),
                    "safeguard": None if system is None else safeguard(system),
                    "purposes": sorted(purposes),
                }
            )
        return out

    def acknowledge(self, conn: Connection, request_id: str, system_id: str, *, actor: str) -> int:
        done = 0
        for notice in self.notices.of(conn, request_id=request_id):
            if notice["system_id"] == system_id and notice["status"] != ACKNOWLEDGED:
                self.notices.acknowledge(conn, notice["notice_id"], actor=actor)
                done += 1
        return done
