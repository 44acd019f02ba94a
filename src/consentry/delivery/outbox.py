"""The outbox: accepted events become one row per allowed system in the transaction that
stores them, carrying only the shared purposes, the fields whose categories the system
declares, and a subject pseudonym keyed per system (never a raw identity)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock, native
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.models import Purpose, SubjectConsent
from consentry.governance import routing, transfers
from consentry.governance.datamap import DataMap
from consentry.governance.models import Refusal, Region, System
from consentry.ingest.ports import AcceptedEvent
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import datamap as map_sql
from consentry.storage import delivery as sql

_JSON = msgspec.json.Encoder()


class Payload(msgspec.Struct, frozen=True):
    """What a row carries, sealed under the subject's key: the event as the system may see
    it, the purposes each restricted field may be shown to, and its fields of sensitive
    personal information (a limit made before the send keeps them back)."""

    event_id: str
    event_type: str
    occurred_at: str
    subject_pseudonym: str
    properties: dict[str, Any]
    field_purposes: dict[str, list[str]]
    sensitive: list[str] = []


PAYLOAD = msgspec.json.Decoder(Payload)


class Delivered(msgspec.Struct):
    """One event of a delivery body, as a receiver gets it (encoded in this field order)."""

    event_id: str
    event_type: str
    occurred_at: str
    subject_pseudonym: str
    purposes: list[str]
    properties: dict[str, Any]


def for_purpose(
    event: AcceptedEvent,
    purpose: str,
    pseudonym: str,
    declared: Callable[[str], bool] | None = None,
) -> Delivered:
    """An accepted event as a delivery body's event for one purpose it was stored for (the
    stream mode's consented topic of that purpose): the fields that purpose may see, the
    subject named by `pseudonym`; with `declared`, only fields of a data category it accepts
    (every consumer of the topic declares it: delivery/consumers.py). No personal value in
    clear: a field the schema seals (or one it does not name) is left out, since a topic's
    records are out of reach of crypto-shredding until they expire (docs/decisions.md);
    pseudonyms and tokens of fields that are not sealed stay."""
    shown = {}
    for name, value in event.values.items():
        if name in event.sealed or name not in event.categories:
            continue
        if declared is not None and not declared(event.categories[name]):
            continue
        only = event.fields.get(name)
        if only is None or purpose in only:
            shown[name] = value
    return Delivered(
        event.event_id,
        event.event_type,
        clock.rfc3339(event.occurred_at),
        pseudonym,
        [purpose],
        shown,
    )


def payload_aad(system_id: str, event_id: str) -> bytes:
    return payload_aad_prefix(system_id) + event_id.encode()


def payload_aad_prefix(system_id: str) -> bytes:
    """What every AAD of the system's rows starts with (the sender builds it once a batch)."""
    return f"consentry:outbox:{system_id}:".encode()


class Pseudonyms:
    """HMAC-SHA256 of the subject id under a key derived per system, so two recipients
    cannot join what they receive, and none can reverse it (computed by the core:
    core/src/pseudonym.rs, Pseudonymiser::for_system)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[str, native.Pseudonymiser] = {}
        self._lock = threading.Lock()

    def of_topic(self, topic: str, subject_id: str) -> str:
        """The subject's pseudonym on a stream-mode topic (keyed by the topic's name, under a
        prefix no system id can take: `topic:`)."""
        return self.of(f"topic:{topic}", subject_id)

    def of(self, system_id: str, subject_id: str) -> str:
        with self._lock:
            base = self._keys.get(system_id)
            if base is None:
                base = self._keys[system_id] = native.Pseudonymiser.for_system(
                    self._secret, system_id
                )
        return base.subject(subject_id)


class Outbox:
    """Writes rows for accepted events, cancels them on opt-outs, and counts them."""

    def __init__(
        self,
        datamap: DataMap,
        subject_keys: SubjectKeys,
        pseudonyms: Pseudonyms,
        exporter: Region,
    ) -> None:
        self.datamap = datamap
        self.subject_keys = subject_keys
        self.pseudonyms = pseudonyms
        self.exporter = exporter
        # Set when rows are written, so a worker in this process looks sooner.
        self.wake = threading.Event()

    def enqueue(
        self,
        conn: Connection,
        accepted: Sequence[AcceptedEvent],
        *,
        version: int,
        states: Mapping[str, SubjectConsent],
        purposes: Mapping[str, Purpose],
    ) -> None:
        """One row per accepted event and allowed system (in the data map at configuration
        `version`) sharing a purpose with it; refused deliveries are counted and audited per
        reason. The ingest pipeline's Deliveries port."""
        if not accepted:
            return
        systems = {k: s for k, s in self.datamap.all(conn, version).items() if routing.queued(s)}
        if not systems:
            return
        now = clock.now()
        stamp = clock.rfc3339(now)
        # Every (system, subject) pair is decided once per batch.
        decided: dict[tuple[str, str], Refusal | None] = {}
        names: dict[tuple[str, str], str] = {}
        declared: dict[tuple[str, str], bool] = {}
        refused: dict[tuple[str, str], int] = defaultdict(int)
        rows: list[tuple[object, ...]] = []
        every = list(purposes.values())
        for event in accepted:
            subject_id = event.subject_id
            for system in systems.values():
                shared = routing.shared(system, event.purposes)
                if not shared:
                    continue
                key = (system.system_id, subject_id)
                if key not in decided:
                    state = states.get(subject_id)
                    decided[key] = transfers.refusal(system, state, every, self.exporter, now)
                    names[key] = self.pseudonyms.of(system.system_id, subject_id)
                reason = decided[key]
                if reason is not None:
                    refused[(system.system_id, reason.value)] += 1
                    continue
                props, restricted = _visible(system, event, shared, declared)
                body = Payload(
                    event.event_id,
                    event.event_type,
                    clock.rfc3339(event.occurred_at),
                    names[key],
                    props,
                    restricted,
                    [n for n in props if n in event.sensitive],
                )
                sealer = self.subject_keys.sealer(conn, subject_id)
                sealed = sealer.seal(
                    _JSON.encode(body), payload_aad(system.system_id, body.event_id)
                )
                rows.append(
                    (
                        system.system_id,
                        body.event_id,
                        subject_id,
                        _JSON.encode(shared).decode(),
                        sealed,
                        sql.PENDING,
                        0,
                        stamp,
                        stamp,
                    )
                )
        sql.insert_outbox(conn, rows)
        if refused:
            record_refusals(conn, refused)
        if rows:
            self.wake.set()

    def cancel(
        self, conn: Connection, subject_id: str, withdrawn: Sequence[str] | None, *, actor: str
    ) -> int:
        """Take the withdrawn purposes (None: all) off the subject's undelivered rows, in the
        caller's transaction; a row left without a purpose is deleted. Rows being sent at this
        moment started before the opt-out. Returns how many rows were deleted."""
        gone: list[int] = []
        changed: list[tuple[int, str]] = []
        for row in sql.undelivered_of(conn, subject_id):
            purposes = msgspec.json.decode(row.purposes)
            left = [] if withdrawn is None else [p for p in purposes if p not in withdrawn]
            if not left:
                gone.append(row.seq)
            elif len(left) < len(purposes):
                changed.append((row.seq, _JSON.encode(left).decode()))
        sql.delete_rows(conn, gone)
        sql.set_purposes(conn, changed)
        if gone or changed:
            audit.record(
                conn,
                AuditAction.DELIVERY_CANCELLED,
                actor=actor,
                subject_id=subject_id,
                details={
                    "purposes": sorted(withdrawn) if withdrawn is not None else "all",
                    "cancelled": len(gone),
                    "narrowed": len(changed),
                },
            )
        return len(gone)

    def counts(self, conn: Connection, system_id: str) -> tuple[int, int]:
        """(undelivered rows, dead-lettered rows) of the system."""
        by_status = sql.counts(conn, system_id)
        return by_status.get(sql.PENDING, 0) + by_status.get(sql.SENDING, 0), by_status.get(
            sql.DEAD, 0
        )


def record_refusals(conn: Connection, refused: Mapping[tuple[str, str], int]) -> None:
    """Count refused deliveries and audit them (one entry for the lot, no subject named)."""
    map_sql.count_refusals(conn, refused)
    details: dict[str, dict[str, int]] = defaultdict(dict)
    for (system_id, reason), n in sorted(refused.items()):
        details[system_id][reason] = n
    audit.record(conn, AuditAction.DELIVERY_REFUSED, actor=audit.SYSTEM_ACTOR, details=details)


def _visible(
    system: System,
    event: AcceptedEvent,
    shared: list[str],
    declared: dict[tuple[str, str], bool],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The fields the system may receive: a category it declares, and (for a field shown
    only to some purposes) one of those purposes among the shared ones."""
    props: dict[str, Any] = {}
    restricted: dict[str, list[str]] = {}
    for name, value in event.values.items():
        category = event.categories[name]
        key = (system.system_id, category)
        if key not in declared:
            declared[key] = system.declares(category)
        if not declared[key]:
            continue
        only = event.fields.get(name)
        # Most fields are shown to every purpose of the event: no call for them (hot path).
        if only is not None:
            serving = routing.field_serving(only, shared)
            if not serving:
                continue
            restricted[name] = serving
        props[name] = value
    return props, restricted


def visible_now(
    payload: Payload, purposes: Sequence[str], sensitive_for: Sequence[str] | None = None
) -> dict[str, Any]:
    """The payload's properties for the purposes a row still names (after withdrawals);
    `sensitive_for`: the purposes that may still carry its sensitive personal information
    (a subject's limit, CCPA §1798.121), None for all of them."""
    sensitive = payload.sensitive if sensitive_for is not None else ()
    if not payload.field_purposes and not sensitive:
        return payload.properties
    shown = {}
    for name, value in payload.properties.items():
        via = sensitive_for if sensitive_for is not None and name in sensitive else purposes
        only = payload.field_purposes.get(name)
        if any(p in via for p in (purposes if only is None else only)):
            shown[name] = value
    return shown
