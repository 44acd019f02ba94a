"""The one place personal data is destroyed: erasure by crypto-shredding, the physical delete
that follows it, the smaller erasure a consent withdrawal (or a grant's expiry) calls for,
and the retention sweep's."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import marks
from consentry.consent.models import Purpose
from consentry.consent.service import ConsentService
from consentry.dsr import retention
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import PURGE_COUNTER, NoticeKind
from consentry.errors import SubjectKeyDestroyed
from consentry.governance import consented
from consentry.ingest import minimise, sealing
from consentry.ingest.minimise import purpose_mask
from consentry.keys.envelope import Sealer
from consentry.settings import Settings
from consentry.storage import consent as consent_sql
from consentry.storage import erasure as sql
from consentry.storage import inferences as inferences_sql
from consentry.storage import ingest as events_sql
from consentry.storage import requests as requests_sql
from consentry.storage import retention as retention_sql
from consentry.storage import stream as stream_sql
from consentry.storage import subjects as subjects_sql
from consentry.storage.engine import AnyRow, Store
from consentry.subjects.resolve import Subjects

log = logging.getLogger(__name__)
# How long a withdrawal waits before the purge reads past it (longer than any transaction).
SETTLE = timedelta(minutes=1)


class Ending(NamedTuple):
    """An event some of whose purposes reached the end of their retention."""

    seq: int
    subject_id: str
    purposes: list[str]
    ended: list[str]


class Erasure:
    """Crypto-shredding first (effective at once), rows deleted next, recipients told last."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        subjects: Subjects,
        consent: ConsentService,
        downstream: Downstream,
        retention_key: bytes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.subjects = subjects
        self.consent = consent
        self.downstream = downstream
        self.retention = Sealer(retention_key)

    def shred(
        self, conn: Connection, subject_id: str, *, request_id: str, actor: str
    ) -> list[dict[str, Any]]:
        """Mark the subject erased (checks answer subject_erased, events are refused), re-seal
        what must be kept under the retention key, leave keyed-hash tombstones of its
        identities, destroy its data key. Returns `retained`. Idempotent."""
        row = subjects_sql.get_subject(conn, subject_id, lock=True)
        if row is None or row.erasure == "erased":
            return []
        purposes = self.consent.registry.all(conn)
        jurisdiction = row.jurisdiction or "EU"
        rows = subjects_sql.identity_rows(conn, subject_id)
        try:
            sealer = self.subjects.keys.sealer(conn, subject_id)
            identities = [
                {"type": i.type.value, "value": i.value, "blind_index": bytes(r.blind_index).hex()}
                for r, i in zip(rows, self.subjects.opened(sealer, subject_id, rows), strict=True)
            ]
            kept = retention.plan(
                conn,
                subject_id,
                sealer,
                purposes,
                proof_days=self.settings.consent_proof_days,
                jurisdiction=jurisdiction,
                identities=identities,
            )
        except SubjectKeyDestroyed:
            kept = []
        listed = retention.seal(
            conn, kept, self.retention, request_id=request_id, subject_id=subject_id
        )
        now = clock.now()
        blind = [bytes(r.blind_index) for r in rows]
        subjects_sql.insert_tombstones(conn, [self.subjects.tombstone(b) for b in blind], now)
        marks.erased(conn, self.consent, subject_id)
        self.subjects.keys.destroy(conn, subject_id)
        details = {"request_id": request_id}
        audit.record(
            conn, AuditAction.SUBJECT_ERASED, actor=actor, subject_id=subject_id, details=details
        )
        for item in listed:
            audit.record(
                conn,
                AuditAction.DATA_RETAINED,
                actor=actor,
                subject_id=subject_id,
                details=details | item,
            )
        audit.record(
            conn,
            AuditAction.SUBJECT_KEY_DESTROYED,
            actor=actor,
            subject_id=subject_id,
            details=details | {"tombstones": len(blind)},
        )
        return listed

    def purge(self, conn: Connection, subject_id: str, *, request_id: str, actor: str) -> list[str]:
        """Delete the subject's rows (events, vault entries, identities, ledger evidence, the
        notes of its requests), cancel its pending deliveries and ask every system that
        received its data to purge it; returns the systems that must acknowledge."""
        row = subjects_sql.get_subject(conn, subject_id)
        counts = sql.delete_subject_data(conn, subject_id)
        consent_sql.strip_evidence(conn, subject_id)
        requests_sql.clear_notes(conn, subject_id)
        # What reaches downstream systems is audited where it happens (delivery).
        self.downstream.cancel_pending(conn, subject_id, None, actor=actor)
        expected = self.downstream.notify(
            conn,
            subject_id,
            NoticeKind.PURGE_REQUEST,
            request_id=request_id,
            purposes=None,
            actor=actor,
            jurisdiction=None if row is None else row.jurisdiction,
        )
        audit.record(
            conn,
            AuditAction.SUBJECT_DATA_DELETED,
            actor=actor,
            subject_id=subject_id,
            details={"request_id": request_id} | counts,
        )
        # The request completes once the subject's records on the consented topics are gone
        # too (dsr/awaiting.py reads these).
        stream_sql.add_waits(
            conn,
            [
                {"request_id": request_id, "subject_id": subject_id, "topic": t, "until": u}
                for t, u in self.topic_waits(conn, subject_id, None).items()
            ],
        )
        return expected

    def topic_waits(
        self, conn: Connection, subject_id: str, purposes: Sequence[str] | None
    ) -> dict[str, datetime]:
        """Per consented topic (of `purposes`; None: any) still holding records of the subject,
        when the last of them is gone: the time its replicas stored with its mark, from the
        retention each applied to the topic (never recomputed here: this process may see other
        settings than the replica that wrote the records). A withdrawal's purge waits for a
        record marked after the withdrawal too (one written under a later grant, or decided
        before it and committed just after: the wait is never cut short). Only those still
        ahead."""
        found = stream_sql.gone_by_of(conn, subject_id)
        if not found:
            return {}
        now = clock.now()
        wanted = None if purposes is None else {consented.topic(p) for p in purposes}
        return {
            topic: until
            for topic, until in sorted(found.items())
            if (wanted is None or topic in wanted) and until > now
        }

    def topic_waits_passed(self, *, actor: str, limit: int = 500) -> int:
        """Mark the topic waits whose time has come as passed; a withdrawal purge's (or a
        lapsed grant's) is audited (`events:topic_purge:passed`): its purge is complete. A request's
        completes at its own step (dsr/awaiting.py). Returns how many passed."""
        now = clock.now()
        # Most passes find none: a read first, so that they take no writer's place for it.
        with self.store.read() as conn:
            if not stream_sql.due(conn, now):
                return 0
        with self.store.write() as conn:
            # Claimed: a wait passed by another process at the same time is not passed (and
            # audited) again here.
            rows = stream_sql.claim_passed(conn, now, limit)
            for row in rows:
                if row.entry_id is None:
                    continue
                audit.record(
                    conn,
                    AuditAction.EVENTS_TOPIC_PURGE_PASSED,
                    actor=actor,
                    subject_id=row.subject_id,
                    details={
                        "entry_id": int(row.entry_id),
                        "topic": row.topic,
                        "until": clock.rfc3339(row.until),
                    },
                )
        return len(rows)

    def purge_withdrawals(
        self, *, actor: str, limit: int = 500, settle: timedelta = SETTLE
    ) -> dict[str, int]:
        """The smaller erasure a withdrawal (or a denial) calls for: events stored before it
        only for withdrawn purposes are deleted, others lose the purpose and the fields that
        served only it; recipients get `consent_withdrawn`. Done at the runner's next pass,
        well within CONSENTRY_WITHDRAWAL_PURGE_HOURS, for withdrawals older than `settle`."""
        done = {"withdrawals": 0, "deleted": 0, "narrowed": 0}
        with self.store.write() as conn:
            # Held until the commit: a purge in another process waits, then starts past these.
            after = requests_sql.counter(conn, PURGE_COUNTER, lock=True)
            # The watermark only passes entries old enough that every entry numbered before
            # them has committed (PostgreSQL numbers entries at insert, not at commit).
            rows = consent_sql.withdrawals_since(conn, after, clock.now() - settle, limit)
            for row in rows:
                deleted, narrowed = self._purge_one(conn, row, actor)
                done["withdrawals"] += 1
                done["deleted"] += deleted
                done["narrowed"] += narrowed
            if rows:
                requests_sql.set_counter(conn, PURGE_COUNTER, int(rows[-1].entry_id))
        if done["deleted"] or done["narrowed"]:
            self.store.checkpoint()
        return done

    def purge_expired(
        self,
        conn: Connection,
        subject_id: str,
        purpose: str,
        *,
        received_by: datetime,
        entry_id: int,
        actor: str,
    ) -> tuple[int, int]:
        """The withdrawal purge for a lapsed grant (consent/expiry.py), in the caller's
        transaction: events received by `received_by` and stored only for `purpose` are
        deleted, others lose it and the fields that served only it. Returns (deleted,
        narrowed)."""
        return self._purge(
            conn,
            subject_id,
            purpose,
            received_by=received_by,
            entry_id=entry_id,
            actor=actor,
            action=AuditAction.EVENTS_EXPIRY_PURGED,
        )

    def _purge_one(self, conn: Connection, row: AnyRow, actor: str) -> tuple[int, int]:
        return self._purge(
            conn,
            row.subject_id,
            row.purpose,
            received_by=row.at,
            entry_id=int(row.entry_id),
            actor=actor,
            action=AuditAction.EVENTS_WITHDRAWAL_PURGED,
        )

    def _purge(
        self,
        conn: Connection,
        subject_id: str,
        purpose: str,
        *,
        received_by: datetime,
        entry_id: int,
        actor: str,
        action: AuditAction,
    ) -> tuple[int, int]:
        deleted: list[int] = []
        narrowed: list[dict[str, Any]] = []
        sealer: Sealer | None = None
        known = self.consent.registry.all(conn)
        since: datetime | None = None
        after = 0
        while True:
            # Events stored after the withdrawal (under a later grant) are not touched.
            page = events_sql.events_with_purpose(
                conn, subject_id, purpose, received_by=received_by, after_seq=after, limit=500
            )
            for event in page:
                start = min(event.occurred_at, event.received_at)
                since = start if since is None else min(since, start)
                kept = [p for p in json.loads(event.purposes) if p != purpose]
                if not kept:
                    deleted.append(int(event.seq))
                    continue
                if sealer is None and event.sealed is not None:
                    try:
                        sealer = self.subjects.keys.sealer(conn, subject_id)
                    except SubjectKeyDestroyed:
                        return 0, 0
                values = _narrowed(event, kept, sealer)
                # Reads find events by their purpose bits: the withdrawn one goes too.
                values["purpose_bits"] = purpose_mask(known[p] for p in kept if p in known)
                narrowed.append(values | {"seq": int(event.seq)})
            if len(page) < 500:
                break
            after = int(page[-1].seq)
        events_sql.update_events(conn, narrowed)
        events_sql.delete_events_by_seq(conn, deleted)
        # A model inference serves its one purpose: recorded before the withdrawal, it goes.
        inferences = inferences_sql.delete_for_purpose(
            conn, subject_id, purpose, created_by=received_by
        )
        waits = self.topic_waits(conn, subject_id, [purpose])
        if waits:
            # Complete once the subject's records on the purpose's topic are gone: said in the
            # audit log now, and again when they are (`topic_waits_passed`).
            stream_sql.add_waits(
                conn,
                [
                    {"entry_id": entry_id, "subject_id": subject_id, "topic": t, "until": u}
                    for t, u in waits.items()
                ],
            )
            for topic, until in waits.items():
                audit.record(
                    conn,
                    AuditAction.EVENTS_TOPIC_PURGE_WAITING,
                    actor=actor,
                    subject_id=subject_id,
                    details={
                        "purpose": purpose,
                        "entry_id": entry_id,
                        "topic": topic,
                        "until": clock.rfc3339(until),
                    },
                )
        if deleted or narrowed or inferences:
            audit.record(
                conn,
                action,
                actor=actor,
                subject_id=subject_id,
                details={
                    "purpose": purpose,
                    "entry_id": entry_id,
                    "deleted": len(deleted),
                    "narrowed": len(narrowed),
                    "inferences": inferences,
                    **_stored_since(since),
                },
            )
            # Recipients were sent `consent_withdrawn` (`consent_expired`) by the withdrawal
            # (the expiry) itself.
        return len(deleted), len(narrowed)

    @staticmethod
    def ending(
        rows: Sequence[tuple[Any, ...]], known: dict[str, Purpose], *, as_of: datetime
    ) -> list[Ending]:
        """Of these events, those with a purpose whose retention ended by `as_of`, and those
        purposes (API.md, Retention). Rows are (seq, subject_id, occurred_at, received_at,
        purposes) with the times in their stored text (text order is time order). Reads
        nothing: the sweep may decide a window before it takes the writer."""
        cutoffs = {
            key: clock.rfc3339(retention.retention_cutoff(as_of, p)) for key, p in known.items()
        }
        # Per stored purpose list (few distinct ones): its purposes with a retention, the
        # earliest and the latest of their cutoffs, so most events take two comparisons.
        kinds: dict[str, tuple[list[str], list[str], str, str]] = {}
        ending: list[Ending] = []
        for seq, subject_id, occurred, received, purposes in rows:
            kind = kinds.get(purposes)
            if kind is None:
                stored = json.loads(purposes)
                timed = [p for p in stored if p in cutoffs]
                times = [cutoffs[p] for p in timed] or [""]
                kind = kinds[purposes] = (stored, timed, min(times), max(times))
            stored, timed, first, last = kind
            start = min(occurred, received)
            if start > last:
                continue
            ended = timed if start <= first else [p for p in timed if start <= cutoffs[p]]
            ending.append(Ending(int(seq), subject_id, stored, ended))
        return ending

    @staticmethod
    def running(known: dict[str, Purpose], *, as_of: datetime) -> retention_sql.Running:
        """The purposes still within their retention at `as_of`, by an event's start, as
        purpose bits (for the sweep's statements): the rule of `ending`, spelled for SQL."""
        cutoffs: dict[str, int] = {}
        for purpose in known.values():
            cutoff = clock.rfc3339(retention.retention_cutoff(as_of, purpose))
            cutoffs[cutoff] = cutoffs.get(cutoff, 0) | purpose_mask([purpose])
        steps = []
        bits = 0
        for cutoff in sorted(cutoffs):
            bits |= cutoffs[cutoff]
            steps.append((cutoff, bits))
        return retention_sql.Running(tuple(reversed(steps)))

    def expire(
        self,
        conn: Connection,
        ending: Sequence[Ending],
        known: dict[str, Purpose],
        *,
        held: Callable[[Collection[str]], dict[str, frozenset[str] | None]],
    ) -> dict[str, int]:
        """The retention sweep's destroying: each event of `ending` (see `ending`) loses the
        purposes that ended, and the fields that served only them; one left with none is
        deleted. `ending` may have been read before this transaction: purposes only ever
        leave an event, so one whose purposes all ended then still has them all ended, and
        what an event narrowed is taken from its row as read here (a purge since is kept);
        an event gone meanwhile (erased) is not counted. `held` names, of the subjects
        given, those under a restriction (Art. 18): None for the whole subject, else the
        purposes held pending an objection; what they hold is left as it is and counted as
        skipped."""
        holds = held({e.subject_id for e in ending}) if ending else {}
        deleting: list[int] = []
        narrowing: dict[int, list[str]] = {}
        skipped = 0
        for seq, subject_id, stored, ending_now in ending:
            ended = ending_now
            if subject_id in holds:
                hold = holds[subject_id]
                ended = [] if hold is None else [p for p in ending_now if p not in hold]
                if len(ended) < len(ending_now):
                    skipped += 1
                if not ended:
                    continue
            if len(ended) < len(stored):
                narrowing[seq] = ended
            else:
                deleting.append(seq)
        narrowed, emptied = self._narrow(
            conn, narrowing, known, {e.seq: e.subject_id for e in ending}
        )
        events_sql.update_events(conn, narrowed)
        deleted = retention_sql.delete_events(conn, deleting + emptied)
        return {"deleted": deleted, "narrowed": len(narrowed), "skipped_restricted": skipped}

    @staticmethod
    def expire_inferences(
        conn: Connection,
        known: dict[str, Purpose],
        *,
        as_of: datetime,
        held: Callable[[Collection[str]], dict[str, frozenset[str] | None]],
        after_seq: int,
        upto_seq: int,
    ) -> dict[str, int]:
        """The retention sweep's destroying of model inferences, a window of seqs at a time:
        those recorded `retention_days` of their purpose before `as_of` are deleted, except a
        restricted subject's (the whole subject, or the purpose pending an objection: Art.
        18), counted as skipped."""
        cutoffs = {key: retention.retention_cutoff(as_of, p) for key, p in known.items()}
        rows = inferences_sql.ended(conn, cutoffs, after_seq, upto_seq)
        holds = held({r.subject_id for r in rows}) if rows else {}
        going = []
        skipped = 0
        for row in rows:
            hold = holds.get(row.subject_id, frozenset())
            if hold is None or row.purpose in hold:
                skipped += 1
                continue
            going.append(row.inference_id)
        return {"deleted": inferences_sql.delete_ids(conn, going), "skipped_restricted": skipped}

    def _narrow(
        self,
        conn: Connection,
        narrowing: dict[int, list[str]],
        known: dict[str, Purpose],
        subject_of: dict[int, str],
    ) -> tuple[list[dict[str, Any]], list[int]]:
        """The new values of events losing `narrowing[seq]` of their purposes as stored now,
        and the events left with none (to delete)."""
        changes = []
        emptied = []
        sealers: dict[str, Sealer | None] = {}
        for event in retention_sql.full_rows(conn, list(narrowing)):
            seq = int(event.seq)
            ended = narrowing[seq]
            kept = [p for p in json.loads(event.purposes) if p not in ended]
            if not kept:
                emptied.append(seq)
                continue
            subject_id = subject_of[seq]
            sealer = None
            if event.sealed is not None:
                if subject_id not in sealers:
                    try:
                        sealers[subject_id] = self.subjects.keys.sealer(conn, subject_id)
                    except SubjectKeyDestroyed:
                        # Unreadable already (crypto-shredded); its rows go with the erasure.
                        sealers[subject_id] = None
                sealer = sealers[subject_id]
            values = _narrowed(event, kept, sealer)
            # Reads find events by their purpose bits: the ended purposes go too.
            values["purpose_bits"] = purpose_mask(known[p] for p in kept if p in known)
            changes.append(values | {"seq": seq})
        return changes, emptied


def _stored_since(since: datetime | None) -> dict[str, str]:
    """The day the earliest purged event occurred or was received: an incident counts the
    subject when its window ends after it (governance/affected.py). The day, not the instant:
    enough for that, and the audit log keeps no finer trace of what the person did."""
    if since is None:
        return {}
    day = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"stored_since": clock.rfc3339(day)}


def _narrowed(event: AnyRow, kept: list[str], sealer: Sealer | None) -> dict[str, Any]:
    """The event without the withdrawn purpose, nor the fields that served only it."""
    field_purposes: dict[str, list[str]] = json.loads(event.field_purposes or "{}")
    gone = {name for name, serving in field_purposes.items() if not set(serving) & set(kept)}
    values: dict[str, Any] = {"purposes": json.dumps(kept, separators=(",", ":"))}
    if gone:
        clear = {k: v for k, v in json.loads(event.properties).items() if k not in gone}
        values["properties"] = minimise.encode(clear)
        if event.sealed is not None and sealer is not None:
            opened = sealing.open_values(sealer, bytes(event.sealed), event.event_id)
            personal = {k: v for k, v in opened.items() if k not in gone}
            values["sealed"] = (
                sealer.seal(minimise.encode_bytes(personal), sealing.event_aad(event.event_id))
                if personal
                else None
            )
        remaining = {k: v for k, v in field_purposes.items() if k not in gone}
        values["field_purposes"] = minimise.encode(remaining) if remaining else None
    return values
