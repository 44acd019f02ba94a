"""The ingest pipeline: decode a batch, resolve subjects, decide consent per event and purpose,
minimise, treat, seal, and store the batch in one transaction (the hot path, DESIGN.md)."""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.consent.service import ConsentService, ConsentWrite
from consentry.consent.tokens import TokenRefused, TokenVerifier
from consentry.errors import (
    ConsentryError,
    IdentityConflict,
    StorageUnavailable,
    SubjectNotFound,
)
from consentry.ingest import decode
from consentry.ingest.decode import Event
from consentry.ingest.models import Treatment
from consentry.ingest.ports import AcceptedEvent, Deliveries
from consentry.ingest.schemas import CompiledSchema, SchemaRegistry
from consentry.ingest.shaping import Shaper
from consentry.ingest.treatments import Treater
from consentry.ingest.work import Decided, Decision, Work
from consentry.keys.envelope import Sealer
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
        # The last answer per (subject, schema, terminal-only): most batches meet a state the
        # pipeline has already decided for.
        self._decisions: dict[tuple[str, str, bool], Decision] = {}

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
        work = self._parse(batch, schemas)
        for ref in _gpc_refs(work, gpc or batch.gpc):
            # GPC on an events batch records the opt-out first (API.md, Consent). A reference
            # to nobody (an unknown subject_id, two people) cannot carry one; its event is
            # refused below. A signal already on record costs one read, not a write.
            with contextlib.suppress(SubjectNotFound, IdentityConflict):
                if self.consent.gpc_would_change(ref):
                    self.consent.record(ConsentWrite(ref=ref, source="gpc", gpc=True), actor=actor)
        self._shape_early(work)
        for attempt in range(_ATTEMPTS):
            try:
                self._transact(work, actor, committing)
                break
            except (ConstraintViolation, OperationalFailure) as exc:
                # Another batch stored the same event id, token or new person first, or the
                # database broke a lock cycle: the whole batch is decided again, from scratch.
                if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                    raise StorageUnavailable(
                        "the batch met concurrent writes; send it again"
                    ) from exc
                work = self._parse(batch, schemas)
        counters.count_events(work.codes)
        return _results(work)

    def _parse(self, batch: decode.Batch, schemas: dict[str, CompiledSchema]) -> Work:
        """Each event's envelope and subject reference (read once per subject, not per
        event), and its properties as the batch's decoding checked them against its schema
        as last loaded (`schemas`; in the transaction an event whose schema is no longer that
        one is decoded again)."""
        items = batch.items
        size = len(items)
        work = Work(
            [item[0] for item in items],
            [None] * size,
            [None] * size,
            [None] * size,
            [-1] * size,
            [None] * size,
            [None] * size,
            [None] * size,
        )
        codes, details, events = work.codes, work.details, work.events
        refs: dict[object, int | str] = {}
        for n, (_event_id, detail, event, checked, _span) in enumerate(items):
            if event is None:
                codes[n], details[n] = "invalid_event", detail
                continue
            events[n] = event
            subject = event.subject
            if detail is not None or subject is None:
                codes[n], details[n] = "invalid_event", detail
                continue
            subject_id, identities = subject.subject_id, subject.identities
            key = (subject_id, None if identities is None else tuple(identities))
            found = refs.get(key)
            if found is None:
                try:
                    ref = subject_ref(subject_id, identities, self.default_region)
                except ConsentryError as exc:
                    # The code names the rule; the error's own message may quote the identity.
                    found = refs[key] = f"subject: {exc.code}"
                else:
                    found = refs[key] = len(work.refs)
                    work.refs.append(ref)
                    work.subject_ids.append(ref.subject_id)
                    work.terminal.append(bool(identities) and policy.terminal_only(ref))
            if isinstance(found, str):
                codes[n], details[n] = "invalid_event", found
                continue
            work.subject_of[n] = found
            if checked is not None and checked[2] is not None:
                work.schemas[n] = schemas[str(event.event_type)]
                work.values[n] = checked[2]
                work.redacted[n] = checked[3]
        return work

    def _shape_early(self, work: Work) -> None:
        """Events whose subject's consent state and key this process already holds are
        decided (once per subject and schema), minimised, treated and sealed here, before the
        transaction, so that processes writing one database in turn do this side by side.
        Nothing here decides what is stored: the transaction reads every subject's version,
        decides again, and keeps an early row only where it makes the very same decision
        (Work.early_rows); it works out the rest itself."""
        purposes = self.consent.registry.cached()
        if not purposes:
            return
        now = clock.now()
        groups: dict[tuple[int, int], int | None] = {}
        decision_of = work.decision_of = [-1] * len(work.codes)
        sealers: dict[int, Sealer] = {}
        positions: list[int] = []
        # Each decision's fields stored as tokens from the vault (issued in the transaction).
        tokenised_of: dict[int, frozenset[str]] = {}
        codes, events, subject_of, values = work.codes, work.events, work.subject_of, work.values
        for n, schema in enumerate(work.schemas):
            if schema is None or codes[n] is not None:
                continue
            s = subject_of[n]
            key = (s, id(schema))
            d = groups.get(key, -1)
            if d == -1:
                d = groups[key] = self._early_decision(work, s, schema, purposes, now, sealers)
                if d is not None:
                    tokenised_of[d] = self.shaper.plan(work.decisions[d], schema).tokenised
            if d is None:
                continue
            tokenised = tokenised_of[d]
            if tokenised and not tokenised.isdisjoint(cast(dict[str, Any], values[n])):
                # Tokens are issued in the transaction.
                continue
            token = cast(Event, events[n]).consent_token
            if token is not None:
                state = work.decisions[d].state
                if self._token_refusal(token, state, now) is not None:
                    continue
            decision_of[n] = d
            positions.append(n)
        if not positions:
            return
        rows = self.shaper.shape(work, positions, sealers)
        early_rows: list[tuple[object, ...] | None] = [None] * len(codes)
        early_decisions: list[Decision | None] = [None] * len(codes)
        decisions = work.decisions
        for n, row in zip(positions, rows, strict=True):
            early_rows[n] = row
            early_decisions[n] = decisions[decision_of[n]]
        work.early_rows, work.early_decisions = early_rows, early_decisions

    def _early_decision(
        self,
        work: Work,
        subject: int,
        schema: CompiledSchema,
        purposes: dict[str, Purpose],
        now: datetime,
        sealers: dict[int, Sealer],
    ) -> int | None:
        """The index of the subject's decision about `schema` from the state and key this
        process holds; None when it holds neither, or the subject's events would not be
        stored."""
        subject_id = work.subject_ids[subject]
        if subject_id is None:
            return None
        state = self.consent.cache.get(subject_id)
        if state is None or policy.subject_refusal(state) is not None:
            return None
        sealer = self.subjects.keys.cached(subject_id)
        if sealer is None:
            return None
        decision = self._decision(work, subject, schema, state, purposes, now)
        if decision.value.code is not None:
            return None
        sealers[subject] = sealer
        work.decisions.append(decision)
        work.decided_for.append((subject, schema))
        return len(work.decisions) - 1

    def _decision(
        self,
        work: Work,
        subject: int,
        schema: CompiledSchema,
        state: SubjectConsent,
        purposes: dict[str, Purpose],
        now: datetime,
    ) -> Decision:
        """The purposes the subject's events of `schema` may be stored for, or the code
        refusing them; remembered per (subject, event type, terminal-only) while it holds."""
        terminal = work.terminal[subject]
        key = (state.subject_id, schema.schema.event_type, terminal)
        known = self._decisions.get(key)
        if known is None or not known.holds(state, purposes, schema, now):
            allowed, code = policy.event_purposes(
                schema.schema.purposes, purposes, state, terminal, now
            )
            known = self._decisions[key] = policy.remember(
                Decided(allowed, code), state, purposes, schema, now
            )
        return known

    def _transact(self, work: Work, actor: str, committing: Committing | None = None) -> None:
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
            accepted = work.accepted()
            stored = self.shaper.store(conn, work, accepted, states, purposes, version)
            decided = {work.decision_of[n] for n in accepted}
            if decided:
                used = sorted({p for d in decided for p in work.decisions[d].value.allowed})
                self.consent.registry.mark_used(conn, used, purposes)
            audit.record(conn, AuditAction.EVENTS_INGESTED, actor=actor, details=_summary(work))
            _record_misclassified(conn, work, actor)
            # The summary's counts, once per batch, refused batches included.
            counts.add_event_counts(conn, clock.now().date().isoformat(), _counts(work))
            if committing is not None:
                committing(_results(work), stored)

    def _classify(self, conn: Connection, work: Work, schemas: dict[str, CompiledSchema]) -> None:
        """unknown_event_type, duplicate_event, then the schema's field codes, in that order."""
        codes, ids, events = work.codes, work.ids, work.events
        stored = sql.stored_event_ids(
            conn, [i for i, code in zip(ids, codes, strict=True) if code is None and i]
        )
        for n, event in enumerate(events):
            if codes[n] is not None or event is None or ids[n] is None:
                continue
            work.details[n] = None
            schema = schemas.get(str(event.event_type))
            if schema is None:
                work.schemas[n] = None
                codes[n] = "unknown_event_type"
            elif ids[n] in stored:
                work.schemas[n] = None
                codes[n] = "duplicate_event"
            elif work.schemas[n] is not schema:
                codes[n] = _decode_properties(work, n, event, schema)

    def _resolve(self, conn: Connection, work: Work, actor: str) -> None:
        """Subjects of the batch: known ones by one look-up, new people created once each."""
        codes, subject_of = work.codes, work.subject_of
        used = sorted({subject_of[n] for n, code in enumerate(codes) if code is None})
        refs = [work.refs[s] for s in used if work.subject_ids[s] is None]
        if not refs:
            return
        by_ref = self.subjects.known_owners(conn, refs)
        # New people (or new identities of known ones) in a stable order, so two batches that
        # introduce the same people never wait on each other crosswise.
        for ref in sorted((r for r in refs if by_ref.get(r) is None), key=_ref_order):
            try:
                by_ref[ref] = self.subjects.resolve(conn, ref, actor=actor).subject.subject_id
            except IdentityConflict:
                by_ref[ref] = None
        for s in used:
            if work.subject_ids[s] is None:
                work.subject_ids[s] = by_ref.get(work.refs[s])
        for n, code in enumerate(codes):
            if code is None and work.subject_ids[subject_of[n]] is None:
                # Identities of two different people in one reference.
                codes[n] = "invalid_event"
                work.details[n] = "subject: the identities belong to different subjects"

    def _states(self, conn: Connection, work: Work) -> dict[str, SubjectConsent]:
        """Each subject's state at the version read now, inside the batch's transaction."""
        codes, subject_of, subject_ids = work.codes, work.subject_of, work.subject_ids
        used = {subject_of[n] for n, code in enumerate(codes) if code is None}
        states = self.consent.cache.for_commit(conn, {cast(str, subject_ids[s]) for s in used})
        missing = {s for s in used if subject_ids[s] not in states}
        if missing:
            for n, code in enumerate(codes):
                if code is None and subject_of[n] in missing:
                    codes[n] = "invalid_event"
                    work.details[n] = "subject: no subject with this subject_id"
        return states

    def _decide(
        self,
        work: Work,
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
    ) -> None:
        """Each event's code, or its decision: once per (subject, schema) against the state
        read in the transaction, a consent token checked per event that carries one."""
        now = clock.now()
        if len(self._decisions) > _MEMO_SIZE:
            self._decisions.clear()
        codes, events, subject_of, subject_ids = (
            work.codes,
            work.events,
            work.subject_of,
            work.subject_ids,
        )
        decisions: list[Decision] = []
        decided_for: list[tuple[int, CompiledSchema]] = []
        decision_of = [-1] * len(codes)
        early = work.early_decisions
        groups: dict[tuple[int, int], int] = {}
        refusals: dict[int, str | None] = {}
        for n, schema in enumerate(work.schemas):
            if codes[n] is not None or schema is None:
                continue
            s = subject_of[n]
            state = states[cast(str, subject_ids[s])]
            refusal = refusals.get(s, "")
            if refusal == "":
                found = policy.subject_refusal(state)
                refusal = refusals[s] = None if found is None else found.value
            if refusal is not None:
                codes[n] = refusal
                continue
            token = cast(Event, events[n]).consent_token
            if token is not None:
                codes[n] = self._token_refusal(token, state, now)
                if codes[n] is not None:
                    continue
            key = (s, id(schema))
            d = groups.get(key)
            if d is None:
                d = groups[key] = len(decisions)
                # The decision made before the transaction, where it still holds (the same
                # object the memo would give), else decided now.
                known = early[n] if early else None
                if known is None or not known.holds(state, purposes, schema, now):
                    known = self._decision(work, s, schema, state, purposes, now)
                decisions.append(known)
                decided_for.append((s, schema))
            codes[n] = decisions[d].value.code
            decision_of[n] = d
        work.decisions, work.decided_for, work.decision_of = decisions, decided_for, decision_of

    def _token_refusal(self, token: str, state: SubjectConsent, now: datetime) -> str | None:
        """The code refusing an event that carries `token`, or None."""
        try:
            claims = self.tokens.claims(token, state.subject_id, now)
        except TokenRefused as refused:
            return refused.code
        if policy.token_stale(int(claims["ver"]), state):
            return "stale_consent_token"
        return None


def _gpc_refs(work: Work, whole: bool) -> list[SubjectRef]:
    """The references of the batch's events that carry GPC (`whole`: all of them), each once,
    in the order of the events."""
    if whole:
        return list(work.refs)
    found = {
        s: None
        for s, event in zip(work.subject_of, work.events, strict=True)
        if s >= 0 and event is not None and event.gpc
    }
    return [work.refs[s] for s in found]


def _decode_properties(work: Work, n: int, event: Event, schema: CompiledSchema) -> str | None:
    """The event's properties decoded against `schema` into work (values and schema); the
    field's code (and detail) when they do not fit it."""
    code, detail, values, redacted = schema.properties.check(event.properties)
    if values is None:
        work.schemas[n], work.details[n] = None, detail
        return code
    work.schemas[n], work.values[n], work.redacted[n] = schema, values, redacted
    return None


def _results(work: Work) -> list[EventResult]:
    decisions, decision_of, details = work.decisions, work.decision_of, work.details
    return [
        EventResult(event_id, "accepted", decisions[decision_of[n]].value.allowed)
        if code is None
        else EventResult(event_id, "rejected", [], code, details[n] or decode.DETAILS.get(code))
        for n, (event_id, code) in enumerate(zip(work.ids, work.codes, strict=True))
    ]


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, ConstraintViolation | SerializationFailure)


def _mark_duplicates(work: Work) -> None:
    """A later copy of an event accepted earlier in the batch is `duplicate_event`; a copy of
    a refused event is judged on its own."""
    accepted: set[str] = set()
    codes = work.codes
    for n, event_id in enumerate(work.ids):
        if event_id is None:
            continue
        if event_id in accepted and codes[n] not in _BEFORE_DUPLICATE:
            codes[n] = "duplicate_event"
        elif codes[n] is None:
            accepted.add(event_id)


def _ref_order(ref: SubjectRef) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((i.type.value, i.value) for i in ref.identities))


def _counts(work: Work) -> dict[tuple[str, str], int]:
    """Events per (outcome, code), the code "" for accepted ones."""
    return {
        (("rejected", code) if code else ("accepted", "")): count
        for code, count in Counter(work.codes).items()
    }


def _record_misclassified(conn: Connection, work: Work, actor: str) -> None:
    """Values of fields declared non-personal in which the core found personal data (and
    redacted it): counted per (event type, field), and audited by count, never by value."""
    found: dict[tuple[str, str], int] = defaultdict(int)
    for n, redacted in enumerate(work.redacted):
        schema = work.schemas[n]
        if redacted and work.codes[n] is None and schema is not None:
            for name in redacted:
                found[(schema.schema.event_type, name)] += 1
    if not found:
        return
    counts.add_misclassified(conn, found, clock.now())
    fields = [{"event_type": t, "field": f, "values": n} for (t, f), n in sorted(found.items())]
    audit.record(conn, AuditAction.MISCLASSIFIED_VALUES, actor=actor, details={"fields": fields})


def _summary(work: Work) -> dict[str, Any]:
    found = Counter(work.codes)
    accepted = found.pop(None, 0)
    return {
        "accepted": accepted,
        "rejected": dict(sorted((cast(str, code), count) for code, count in found.items())),
    }
