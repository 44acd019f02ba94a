"""Rights notices (Art. 19, CCPA regs §7026(f)): purge requests, withdrawals, restrictions and
rectifications sent to the rights endpoint of every system that received the subject's data,
retried until a 2xx acknowledges them, overdue after the system's acknowledgement window."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.delivery.outbox import Pseudonyms, record_refusals
from consentry.delivery.propagation import WITHHELD, Gates
from consentry.delivery.sinks import Sink, signature
from consentry.dsr.models import NoticeKind
from consentry.errors import RightsNoticeNotFound
from consentry.governance.datamap import DataMap
from consentry.governance.models import DEFAULT_ACK_HOURS, System
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import delivery as sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.models import IDENTITY_CATEGORIES, Jurisdiction

MAX_DELAY_SECONDS = 300.0
MANUAL = sql.MANUAL
ACKNOWLEDGED = sql.ACKNOWLEDGED


class Queued(NamedTuple):
    """A notice just queued, and the system it is to."""

    notice_id: str
    system_id: str


def notice_aad(notice_id: str) -> bytes:
    return b"consentry:rights-notice:" + notice_id.encode()


def backoff(base: float, attempts: int) -> float:
    """Seconds before the next try: doubling from `base` up to five minutes, with jitter in
    the upper half, so a failed receiver is never tried again without an interval."""
    delay = min(MAX_DELAY_SECONDS, base * float(2 ** min(30, max(0, attempts - 1))))
    return delay / 2 + random.random() * delay / 2  # noqa: S311 - jitter, not a secret


class RightsNotices:
    """Queues notices in the caller's transaction; `send_due` delivers them (the worker)."""

    def __init__(
        self,
        store: Store,
        datamap: DataMap,
        pseudonyms: Pseudonyms,
        retry_base: float,
        send_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.datamap = datamap
        self.pseudonyms = pseudonyms
        self.retry_base = retry_base
        # How long a claimed notice is left to its sender (as the outbox's stale claims): a
        # send ends, answered or timed out, well within it, so no other worker sends the same
        # notice while it is on the wire, and the next one about the subject (which waits
        # for its acknowledgement) can never overtake a copy still travelling.
        self.lease = timedelta(seconds=send_timeout * 2 + 30)

    def queue(
        self,
        conn: Connection,
        subject_id: str,
        kind: NoticeKind,
        *,
        actor: str,
        purposes: Sequence[str] | None = None,
        request_id: str | None = None,
        forward: bool = False,
        corrected: Sequence[tuple[str, str]] = (),
        sealer: Sealer | None = None,
        jurisdiction: str | None = None,
    ) -> list[Queued]:
        """A notice to each system that received the subject's data (for one of `purposes`,
        or for any when None); a system without a rights endpoint gets one to acknowledge by
        hand. `corrected`: (identity type, new value) pairs of a rectification; each system's
        notice carries those of the categories it declares, sealed under `sealer` (the
        subject's key) until it is sent. A `purge_request` about a US-CA subject's data is to be
        passed on (`forward`) by a system with a CCPA role (§1798.105(c), regs §7022(b)).
        Returns the notices queued, one per system, in system order."""
        systems = self.datamap.all(conn)
        now = clock.now()
        rows = []
        for system_id, received in sorted(sql.recipients_of(conn, subject_id).items()):
            # A system taken off the data map still holds what it received: its notice waits
            # for an acknowledgement by hand, as for a system without a rights endpoint.
            system = systems.get(system_id)
            concerned = None if purposes is None else sorted(received & set(purposes))
            if concerned == []:
                continue
            notice_id = "rn_" + uuid.uuid4().hex
            values = [
                {"type": id_type, "category": IDENTITY_CATEGORIES[id_type], "value": value}
                for id_type, value in corrected
                if system is not None and system.declares(IDENTITY_CATEGORIES[id_type])
            ]
            sealed = None
            if values and sealer is not None:
                sealed = sealer.seal(msgspec.json.encode(values), notice_aad(notice_id))
            rows.append(
                {
                    "notice_id": notice_id,
                    "system_id": system_id,
                    "subject_id": subject_id,
                    "type": kind.value,
                    "request_id": request_id,
                    "purposes": None if concerned is None else json.dumps(concerned),
                    "forward": forward
                    or (
                        kind is NoticeKind.PURGE_REQUEST
                        and jurisdiction == Jurisdiction.US_CA.value
                        and system is not None
                        and system.ccpa_role is not None
                    ),
                    "status": sql.PENDING if system and system.rights_endpoint else MANUAL,
                    "attempts": 0,
                    "next_at": now,
                    "created_at": now,
                    "due_at": now
                    + timedelta(hours=system.ack_hours if system else DEFAULT_ACK_HOURS),
                    "sealed": sealed,
                }
            )
        sql.insert_notices(conn, rows)
        if rows:
            audit.record(
                conn,
                AuditAction.RIGHTS_NOTICE_QUEUED,
                actor=actor,
                subject_id=subject_id,
                details={
                    "type": kind.value,
                    "request_id": request_id,
                    "systems": [r["system_id"] for r in rows],
                },
            )
        return [Queued(str(r["notice_id"]), str(r["system_id"])) for r in rows]

    def body(self, row: AnyRow, sealer: Sealer | None = None) -> bytes:
        """The notice as API.md spells it; its sealed part is opened with `sealer` (the
        subject's key), left out when there is none (the subject erased since)."""
        out: dict[str, Any] = {
            "type": row.type,
            "subject_pseudonym": self.pseudonyms.of(row.system_id, row.subject_id),
            "system_id": row.system_id,
        }
        if row.request_id is not None:
            out["request_id"] = row.request_id
        if row.purposes is not None:
            out["purposes"] = json.loads(row.purposes)
        if row.forward:
            out["forward"] = True
        if row.version is not None:
            out["version"] = int(row.version)
        if row.sealed is not None and sealer is not None:
            out["corrected"] = msgspec.json.decode(
                sealer.open(bytes(row.sealed), notice_aad(row.notice_id))
            )
        return msgspec.json.encode(out)

    def send_due(
        self,
        sink: Sink,
        limit: int = 100,
        keys: SubjectKeys | None = None,
        gates: Gates | None = None,
    ) -> int:
        """Send the notices that are due, one POST each; returns how many were acknowledged.
        Marks overdue ones (audited once). `keys` opens the sealed part of a notice; `gates`
        decide a `consent_updated` again (what they withhold is counted as refused)."""
        now = clock.now()
        acknowledged = 0
        with self.store.write() as conn:
            systems = self.datamap.all(conn)
            for row in sql.newly_overdue(conn, now):
                sql.update_notice(conn, row.notice_id, overdue_at=now)
                audit.record(
                    conn,
                    AuditAction.RIGHTS_NOTICE_OVERDUE,
                    actor=audit.SYSTEM_ACTOR,
                    subject_id=row.subject_id,
                    details={"notice_id": row.notice_id, "system_id": row.system_id},
                )
            # Of a system's pending notices about one subject only the oldest is due (a
            # lifting never overtakes its restriction): chosen in SQL, before the limit.
            due = sql.due_notices(conn, now, limit)
            if gates is not None:
                due = _gated(conn, due, systems, gates, now)
            secrets = {
                r.system_id: self.datamap.signing_secret(conn, r.system_id)
                for r in due
                if r.system_id in systems
            }
            # Keys as this transaction sees them, never from the process cache: another
            # process's erasure may have destroyed one since, and its corrected values must
            # then never go out.
            sealed = {r.subject_id for r in due if r.sealed is not None}
            sealers = keys.open_many(conn, sealed) if keys is not None and sealed else {}
            # Claimed by moving next_at past the lease: a sender that dies mid-send leaves it
            # to be sent again after that; a failed send sets the backoff below.
            for row in due:
                sql.update_notice(
                    conn, row.notice_id, next_at=now + self.lease, attempts=row.attempts + 1
                )
        for row in due:
            system = systems.get(row.system_id)
            if system is None or system.rights_endpoint is None:
                continue
            body = self.body(row, sealers.get(row.subject_id))
            outcome = sink.send(
                system.rights_endpoint, body, signature(secrets[row.system_id], body)
            )
            with self.store.write() as conn:
                if outcome.ok:
                    acknowledged += self._acknowledge(conn, row, audit.SYSTEM_ACTOR, clock.now())
                else:
                    delay = timedelta(seconds=backoff(self.retry_base, row.attempts + 1))
                    sql.retry_notice(conn, row.notice_id, clock.now() + delay, outcome.error)
        return acknowledged

    def acknowledge(self, conn: Connection, notice_id: str, *, actor: str) -> None:
        """A manual acknowledgement (a system without a rights endpoint, or one confirmed by
        other means)."""
        row = sql.get_notice(conn, notice_id)
        if row is None:
            raise RightsNoticeNotFound(f"no rights notice {notice_id!r}", notice_id=notice_id)
        self._acknowledge(conn, row, actor, clock.now())

    def _acknowledge(self, conn: Connection, row: AnyRow, actor: str, now: datetime) -> int:
        if row.status == ACKNOWLEDGED:
            return 0
        sql.update_notice(conn, row.notice_id, status=ACKNOWLEDGED, acknowledged_at=now)
        audit.record(
            conn,
            AuditAction.RIGHTS_NOTICE_ACKNOWLEDGED,
            actor=actor,
            subject_id=row.subject_id,
            details={"notice_id": row.notice_id, "system_id": row.system_id, "type": row.type},
        )
        return 1

    def of(
        self, conn: Connection, *, request_id: str | None = None, subject_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Notices of a request (or a subject) in the order they were queued, with their
        state, for the requests work."""
        now = clock.now()
        return [
            {
                "notice_id": r.notice_id,
                "system_id": r.system_id,
                "type": r.type,
                "request_id": r.request_id,
                "status": r.status,
                "attempts": r.attempts,
                "sent_at": clock.rfc3339(r.created_at),
                "due_at": clock.rfc3339(r.due_at),
                "acknowledged_at": clock.rfc3339(r.acknowledged_at) if r.acknowledged_at else None,
                "overdue": r.status in sql.AWAITING_ACK and r.due_at < now,
            }
            for r in sql.notices_where(conn, request_id=request_id, subject_id=subject_id)
        ]


def _gated(
    conn: Connection,
    due: Sequence[AnyRow],
    systems: dict[str, System],
    gates: Gates,
    now: datetime,
) -> list[AnyRow]:
    """The due notices, each `consent_updated` narrowed to what the gates let through now (a
    narrowed one is stored narrowed, so its retries send the same); one left with nothing is
    withheld, never sent. What was withheld is counted and audited as a refused delivery."""
    out: list[AnyRow] = []
    refused: dict[tuple[str, str], int] = defaultdict(int)
    for row in due:
        system = systems.get(row.system_id)
        if row.type != NoticeKind.CONSENT_UPDATED.value or system is None:
            out.append(row)
            continue
        passing, gate = gates.passing(conn, row, system, now)
        if gate is None:
            out.append(row)
            continue
        refused[(row.system_id, gate.value)] += 1
        if not passing:
            sql.update_notice(conn, row.notice_id, status=WITHHELD)
            continue
        sql.update_notice(conn, row.notice_id, purposes=json.dumps(passing, sort_keys=True))
        narrowed = sql.get_notice(conn, row.notice_id)
        if narrowed is not None:
            out.append(narrowed)
    if refused:
        record_refusals(conn, refused)
    return out


def purge_request(
    notices: RightsNotices, conn: Connection, subject_id: str, request_id: str, *, actor: str
) -> list[str]:
    """The erasure's step: a `purge_request` to every system that received the subject's
    data, in the caller's transaction; the request completes when each is acknowledged."""
    queued = notices.queue(
        conn, subject_id, NoticeKind.PURGE_REQUEST, actor=actor, request_id=request_id
    )
    return [q.notice_id for q in queued]
