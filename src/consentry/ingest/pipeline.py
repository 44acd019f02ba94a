"""The ingest pipeline: decode a batch, resolve subjects, decide consent per event and purpose,
minimise, treat, seal, and store the batch in one transaction (the hot path, DESIGN.md)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose, Remembered, SubjectConsent
from consentry.consent.service import ConsentService, ConsentWrite
from consentry.consent.tokens import TokenRefused, TokenVerifier
from consentry.errors import (
    ConsentryError,
    IdentityConflict,
    StorageUnavailable,
    SubjectNotFound,
)
from consentry.ingest import decode
from consentry.ingest.models import Treatment
from consentry.ingest.ports import AcceptedEvent, Deliveries
from consentry.ingest.schemas import CompiledSchema, SchemaRegistry
from consentry.ingest.shaping import Decided, Shaper
from consentry.ingest.treatments import Treater
from consentry.ingest.work import Ready, Work
from consentry.operations import counters
from consentry.storage import compliance as counts
from consentry.storage import ingest as sql
from consentry.storage.configuration import config_version
from consentry.storage.engine import Store
from consentry.storage.errors import ConstraintViolation, OperationalFailure, SerializationFailure
from consentry.subjects.models import SubjectRef
from consentry.subjects.refs import subject_ref
from consentry.subjects.resolve import Subjects

_MEMO_SIZE = 200_000
_ATTEMPTS = 3
# The codes API.md tests before duplicate_event.
_BEFORE_DUPLICATE = frozenset({"invalid_event", "unknown_event_type"})


# A struct: built per event of every batch (a frozen dataclass costs several times as much).
class EventResult(msgspec.Struct, frozen=True, gc=False):
    event_id: str | None
    status: str
    purposes: list[str]
    code: str | None = None
    detail: str | None = None


# Called by the batch's write transaction once it has stored the batch, before it commits: the
# per-event results and the accepted events (stream mode: its Kafka transaction commits here,
# while the subjects' versions read by the batch are still held).
Committing = Callable[[list[EventResult], Sequence[AcceptedEvent]], None]


class Pipeline:
    """Turns a raw batch body into stored, consented, minimised events and per-event results."""

    def __init__(
        self,
        store: Store,
        subjects: Subjects,
        schemas: SchemaRegistry,
        consent: ConsentService,
        treaters: dict[Treatment, Treater],
        tokens: TokenVerifier,
        default_region: str,
        deliveries: Deliveries,
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.schemas = schemas
        self.consent = consent
        self.tokens = tokens
        self.default_region = default_region
        # Accepted events are stored, and handed on for delivery, by the write step.
        self.shaper = Shaper(subjects.keys, treaters, deliveries)
        # The last answer per (subject, schema, terminal-only): most events meet a state the
        # pipeline has already decided for.
        self._decisions: dict[tuple[str, str, bool], Remembered[tuple[list[str], str | None]]] = {}

    def ingest(
        self,
        body: bytes,
        *,
        actor: str,
        gpc: bool = False,
        committing: Committing | None = None,
    ) -> list[EventResult]:
        """Process one batch; each event is accepted or rejected with its code, in order.
        `committing`: called in the write transaction before it commits (see Committing);
        it may be called again when the batch is decided again after a conflict."""
        # One reading of the clock judges the whole batch's occurred_at; each event's
        # properties are checked against its schema as last loaded, in the same call.
        latest = clock.now() + decode.MAX_AHEAD
        schemas = self.schemas.last()
        batch = decode.batch(body, latest, {t: s.properties for t, s in schemas.items()})
        work = self._parse_all(batch)
        ready = self._prepare(work, batch, schemas)
        gpc_refs = [
            w.ref for w in work if w.ref and (gpc or batch.gpc or (w.event and w.event.gpc))
        ]
        for ref in dict.fromkeys(gpc_refs):
            # GPC on an events batch records the opt-out first (API.md, Consent). A reference
            # to nobody (an unknown subject_id, two people) cannot carry one; its event is
            # refused below. A signal already on record costs one read, not a write.
            with contextlib.suppress(SubjectNotFound, IdentityConflict):
                if self.consent.gpc_would_change(ref):
                    self.consent.record(ConsentWrite(ref=ref, source="gpc", gpc=True), actor=actor)
        self._shape_early(work, ready)
        for attempt in range(_ATTEMPTS):
            try:
                self._transact(work, actor, ready, committing)
                break
            except (ConstraintViolation, OperationalFailure) as exc:
                # Another batch stored the same event id, token or new person first, or the
                # database broke a lock cycle: the whole batch is decided again, from scratch.
                if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                    raise StorageUnavailable(
                        "the batch met concurrent writes; send it again"
                    ) from exc
                work = self._parse_all(batch)
        counters.count_events(w.code for w in work)
        return _results(work)

    def _prepare(
        self, work: list[Work], batch: decode.Batch, schemas: dict[str, CompiledSchema]
    ) -> Ready:
        """What needs neither the transaction nor anybody's consent, done before it (so
        processes writing one database in turn do it side by side): each event's properties
        as the batch's decoding checked them against its schema as last loaded (`schemas`),
        and the values of pure treatments (pseudonymise, redact) treated. In the transaction
        an event whose schema is no longer the one it was decoded against is decoded again,
        and a value not treated here is treated there; nothing here decides what is stored."""
        ready: Ready = {}
        if not schemas:
            return ready
        decoded = []
        for w in work:
            if w.code is not None or w.event is None:
                continue
            schema = schemas.get(str(w.event.event_type))
            checked = batch.items[w.position][3]
            if schema is not None and checked is not None and _take(w, schema, checked) is None:
                decoded.append((w, schema))
        self.shaper.treat_ready(decoded, ready)
        return ready

    def _shape_early(self, work: list[Work], ready: Ready) -> None:
        """Events whose subject's consent state and key this process already holds are
        decided, minimised, treated and sealed here, before the transaction, so that
        processes writing one database in turn do this side by side. Nothing here decides
        what is stored: the transaction reads every subject's version, decides again, and
        keeps an early row only where nothing it was worked out from has changed (work.Early);
        it works out the rest itself."""
        purposes = self.consent.registry.cached()
        if not purposes:
            return
        now = clock.now()
        decided: list[Decided] = []
        for w in work:
            if w.code is not None or w.schema is None or w.ref is None:
                continue
            subject_id = w.ref.subject_id
            if subject_id is None:
                continue
            state = self.consent.cache.get(subject_id)
            sealer = self.subjects.keys.cached(subject_id)
            if state is None or sealer is None or self._refusal(w, state, now) is not None:
                continue
            allowed, code = self._decision(w, w.schema, state, purposes, now)
            if code is None:
                decided.append((w, w.schema, state, allowed, sealer))
        self.shaper.shape_early(decided, purposes, ready)

    def _decision(
        self,
        w: Work,
        schema: CompiledSchema,
        state: SubjectConsent,
        purposes: dict[str, Purpose],
        now: datetime,
    ) -> tuple[list[str], str | None]:
        """The purposes the event may be stored for, or the code refusing it; remembered per
        (subject, event type, terminal-only) while it holds."""
        terminal = w.ref is not None and policy.terminal_only(w.ref)
        key = (state.subject_id, schema.schema.event_type, terminal)
        known = self._decisions.get(key)
        if known is None or not known.holds(state, purposes, schema, now):
            answer = policy.event_purposes(schema.schema.purposes, purposes, state, terminal, now)
            known = self._decisions[key] = policy.remember(answer, state, purposes, schema, now)
        return known.value

    def _transact(
        self, work: list[Work], actor: str, ready: Ready, committing: Committing | None = None
    ) -> None:
        """Decide and store the batch in one transaction."""
        with self.store.write() as conn:
            # One read of the configuration version serves the whole batch.
            version = config_version(conn)
            purposes = self.consent.registry.all(conn, version)
            self._classify(conn, work, self.schemas.all(conn, version))
            self._resolve(conn, work, actor)
            states = self._states(conn, work)
            self._decide(work, states, purposes)
            _mark_duplicates(work)
            stored = self.shaper.store(conn, work, states, purposes, version, ready)
            accepted = [w for w in work if w.code is None]
            if accepted:
                used = sorted({p for w in accepted for p in w.purposes})
                self.consent.registry.mark_used(conn, used, purposes)
            audit.record(conn, AuditAction.EVENTS_INGESTED, actor=actor, details=_summary(work))
            _record_misclassified(conn, accepted, actor)
            # The summary's counts, once per batch, refused batches included.
            counts.add_event_counts(conn, clock.now().date().isoformat(), _counts(work))
            if committing is not None:
                committing(_results(work), stored)

    def _parse_all(self, batch: decode.Batch) -> list[Work]:
        # Events of one subject share one reference: read once per subject, not per event.
        refs: dict[object, SubjectRef] = {}
        return [self._parse(i, item, refs) for i, item in enumerate(batch.items)]

    def _parse(self, position: int, item: decode.Item, refs: dict[object, SubjectRef]) -> Work:
        event_id, detail, event, _checked, _span = item
        if event is None:
            return Work(position, event_id, "invalid_event", detail)
        work = Work(position, event_id, event=event)
        subject = event.subject
        if detail is not None or subject is None:
            work.code, work.detail = "invalid_event", detail
            return work
        subject_id, identities = subject.subject_id, subject.identities
        key = (subject_id, None if identities is None else tuple(identities))
        ref = refs.get(key)
        if ref is None:
            try:
                ref = refs[key] = subject_ref(subject_id, identities, self.default_region)
            except ConsentryError as exc:
                # The code names the rule; the error's own message may quote the identity.
                work.code, work.detail = "invalid_event", f"subject: {exc.code}"
                return work
        work.ref = ref
        return work

    def _classify(
        self, conn: Connection, work: list[Work], schemas: dict[str, CompiledSchema]
    ) -> None:
        """unknown_event_type, duplicate_event, then the schema's field codes, in that order."""
        stored = sql.stored_event_ids(
            conn, [w.event_id for w in work if w.code is None and w.event_id]
        )
        for w in work:
            if w.code is not None or w.event is None or w.event_id is None:
                continue
            decoded_with, w.schema, w.detail = w.schema, None, None
            schema = schemas.get(str(w.event.event_type))
            if schema is None:
                w.code = "unknown_event_type"
                continue
            if w.event_id in stored:
                w.code = "duplicate_event"
                continue
            if decoded_with is schema:
                w.schema = schema
            else:
                w.code = _decode_properties(w, schema)

    def _resolve(self, conn: Connection, work: list[Work], actor: str) -> None:
        """Subjects of the batch: known ones by one look-up, new people created once each."""
        for w in work:
            if w.code is None and w.ref is not None and w.ref.subject_id is not None:
                w.subject_id = w.ref.subject_id
        refs = list(
            dict.fromkeys(
                w.ref for w in work if w.code is None and w.ref is not None and not w.subject_id
            )
        )
        by_ref = self.subjects.known_owners(conn, refs)
        # New people (or new identities of known ones) in a stable order, so two batches that
        # introduce the same people never wait on each other crosswise.
        for ref in sorted((r for r in refs if by_ref.get(r) is None), key=_ref_order):
            try:
                by_ref[ref] = self.subjects.resolve(conn, ref, actor=actor).subject.subject_id
            except IdentityConflict:
                by_ref[ref] = None
        for w in work:
            if w.code is None and w.ref is not None and w.subject_id is None:
                w.subject_id = by_ref.get(w.ref)
                if w.subject_id is None:
                    # Identities of two different people in one reference.
                    w.code = "invalid_event"
                    w.detail = "subject: the identities belong to different subjects"

    def _states(self, conn: Connection, work: list[Work]) -> dict[str, SubjectConsent]:
        """Each subject's state at the version read now, inside the batch's transaction."""
        ids = {w.subject_id for w in work if w.code is None and w.subject_id}
        states = self.consent.cache.for_commit(conn, ids)
        for w in work:
            if w.code is None and w.subject_id not in states:
                w.code, w.detail = "invalid_event", "subject: no subject with this subject_id"
        return states

    def _decide(
        self,
        work: list[Work],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
    ) -> None:
        now = clock.now()
        memo = self._decisions
        if len(memo) > _MEMO_SIZE:
            memo.clear()
        for w in work:
            if w.code is not None or w.schema is None or w.subject_id is None or w.ref is None:
                continue
            state = states[w.subject_id]
            w.code = self._refusal(w, state, now)
            if w.code is None:
                w.purposes, w.code = self._decision(w, w.schema, state, purposes, now)

    def _refusal(self, w: Work, state: SubjectConsent, now: datetime) -> str | None:
        refusal = policy.subject_refusal(state)
        if refusal is not None:
            return refusal.value
        token = w.event.consent_token if w.event else None
        if token is not None:
            try:
                claims = self.tokens.claims(token, state.subject_id, now)
            except TokenRefused as refused:
                return refused.code
            if policy.token_stale(int(claims["ver"]), state):
                return "stale_consent_token"
        return None


def _decode_properties(w: Work, schema: CompiledSchema) -> str | None:
    """The event's properties decoded against `schema` into w.properties (and w.schema);
    the field's code (and w.detail) when they do not fit it."""
    if w.event is None:
        return "invalid_event"
    return _take(w, schema, schema.properties.check(w.event.properties))


def _take(w: Work, schema: CompiledSchema, checked: decode.Checked) -> str | None:
    """What the core made of the event's properties against `schema`, taken into `w`."""
    code, detail, values, redacted = checked
    if values is None:
        w.detail = detail
        return code
    w.schema = schema
    w.properties = values
    w.redacted = redacted
    return None


def _results(work: Sequence[Work]) -> list[EventResult]:
    return [
        EventResult(w.event_id, "accepted", w.purposes)
        if w.code is None
        else EventResult(w.event_id, "rejected", [], w.code, w.detail or decode.DETAILS.get(w.code))
        for w in work
    ]


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, ConstraintViolation | SerializationFailure)


def _mark_duplicates(work: list[Work]) -> None:
    """A later copy of an event accepted earlier in the batch is `duplicate_event`; a copy of
    a refused event is judged on its own."""
    accepted: set[str] = set()
    for w in work:
        if w.event_id is not None and w.event_id in accepted and w.code not in _BEFORE_DUPLICATE:
            w.code = "duplicate_event"
        elif w.code is None and w.event_id is not None:
            accepted.add(w.event_id)


def _ref_order(ref: SubjectRef) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((i.type.value, i.value) for i in ref.identities))


def _counts(work: Sequence[Work]) -> dict[tuple[str, str], int]:
    """Events per (outcome, code), the code "" for accepted ones."""
    found: dict[tuple[str, str], int] = defaultdict(int)
    for w in work:
        found[("rejected", w.code) if w.code else ("accepted", "")] += 1
    return found


def _record_misclassified(conn: Connection, accepted: list[Work], actor: str) -> None:
    """Values of fields declared non-personal in which the core found personal data (and
    redacted it): counted per (event type, field), and audited by count, never by value."""
    found: dict[tuple[str, str], int] = defaultdict(int)
    for w in accepted:
        if w.redacted and w.schema is not None:
            for name in w.redacted:
                found[(w.schema.schema.event_type, name)] += 1
    if not found:
        return
    counts.add_misclassified(conn, found, clock.now())
    fields = [{"event_type": t, "field": f, "values": n} for (t, f), n in sorted(found.items())]
    audit.record(conn, AuditAction.MISCLASSIFIED_VALUES, actor=actor, details={"fields": fields})


def _summary(work: Sequence[Work]) -> dict[str, Any]:
    rejected: dict[str, int] = defaultdict(int)
    for w in work:
        if w.code:
            rejected[w.code] += 1
    return {
        "accepted": sum(1 for w in work if w.code is None),
        "rejected": dict(sorted(rejected.items())),
    }
