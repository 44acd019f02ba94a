"""The ingest pipeline: decode a batch, resolve subjects, decide consent per event and purpose,
minimise, treat, seal, and store the batch in one transaction (the hot path, DESIGN.md)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Connection

from consentry import clock, jsonlimits
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.consent.service import ConsentService, ConsentWrite
from consentry.consent.tokens import TokenRefused, TokenVerifier
from consentry.delivery.outbox import Outbox
from consentry.errors import (
    ConsentryError,
    IdentityConflict,
    StorageUnavailable,
    SubjectNotFound,
)
from consentry.ingest import decode, minimise, sealing
from consentry.ingest.decode import Event
from consentry.ingest.minimise import Plan, Planner
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema, SchemaRegistry
from consentry.ingest.treatments import Item, PureTreater, Treater
from consentry.keys.envelope import Sealer, nonces
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
# Values treated before the transaction: (treatment, field, value) -> treated value.
_Ready = dict[tuple[Treatment, str, Any], Any]


@dataclass(frozen=True, slots=True)
class _Shaped:
    """How one accepted event is stored: its plan, its row (in storage.ingest.EVENT_COLUMNS
    order but for received_at, added at the insert), and its kept values in clear and to be
    sealed (for the delivery outbox)."""

    plan: Plan
    row: tuple[object, ...]
    clear: dict[str, Any]
    personal: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Early:
    """An event shaped before the batch's transaction. It stands only where the transaction
    decides the same purposes against the very same state, purposes and schema objects: the
    state object is replaced whenever the subject's consent version moves."""

    state: SubjectConsent
    purposes: dict[str, Purpose]
    schema: CompiledSchema
    allowed: list[str]
    shaped: _Shaped


@dataclass(slots=True)
class _Work:
    """One event on its way through the pipeline."""

    position: int
    event_id: str | None
    code: str | None = None
    # Which field and rule, when the code alone does not say (never a value that was sent).
    detail: str | None = None
    event: Event | None = None
    ref: SubjectRef | None = None
    schema: CompiledSchema | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    subject_id: str | None = None
    purposes: list[str] = field(default_factory=list)
    early: _Early | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str | None
    status: str
    purposes: list[str]
    code: str | None = None
    detail: str | None = None


class Pipeline:
    """Turns a raw batch body into stored, consented, minimised events and per-event results."""

    # Set by the Runtime: accepted events go to the delivery outbox in the same transaction.
    outbox: Outbox | None = None

    def __init__(
        self,
        store: Store,
        subjects: Subjects,
        schemas: SchemaRegistry,
        consent: ConsentService,
        treaters: dict[Treatment, Treater],
        tokens: TokenVerifier,
        default_region: str,
    ) -> None:
        self.store = store
        self.subjects = subjects
        self.schemas = schemas
        self.consent = consent
        self.treaters = treaters
        self.tokens = tokens
        self.default_region = default_region
        self.planner = Planner()
        self._pure = {k: cast(PureTreater, t) for k, t in treaters.items() if t.pure}
        # The last answer per (subject, schema, terminal-only): most events meet a state the
        # pipeline has already decided for.
        self._decisions: dict[
            tuple[str, str, bool], policy.Remembered[tuple[list[str], str | None]]
        ] = {}

    def ingest(self, body: bytes, *, actor: str, gpc: bool = False) -> list[EventResult]:
        """Process one batch; each event is accepted or rejected with its code, in order."""
        batch = decode.batch(body)
        # One reading of the clock judges the whole batch's occurred_at.
        latest = clock.now() + decode.MAX_AHEAD
        work = [self._parse(i, raw, latest) for i, raw in enumerate(batch.events)]
        ready = self._prepare(work)
        _certify(work, batch)
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
                self._transact(work, actor, ready)
                break
            except (ConstraintViolation, OperationalFailure) as exc:
                # Another batch stored the same event id, token or new person first, or the
                # database broke a lock cycle: the whole batch is decided again, from scratch.
                if attempt == _ATTEMPTS - 1 or not _retryable(exc):
                    raise StorageUnavailable(
                        "the batch met concurrent writes; send it again"
                    ) from exc
                work = [self._parse(i, raw, latest) for i, raw in enumerate(batch.events)]
        return [
            EventResult(w.event_id, "accepted", w.purposes)
            if w.code is None
            else EventResult(
                w.event_id, "rejected", [], w.code, w.detail or decode.DETAILS.get(w.code)
            )
            for w in work
        ]

    def _prepare(self, work: list[_Work]) -> _Ready:
        """What needs neither the transaction nor anybody's consent, done before it (so
        processes writing one database in turn do it side by side): each event's properties
        decoded against its schema as last loaded, and the values of pure treatments
        (pseudonymise, redact) treated. In the transaction an event whose schema is no longer
        the one it was decoded against is decoded again, and a value not treated here is
        treated there; nothing here decides what is stored."""
        schemas = self.schemas.last()
        ready: _Ready = {}
        if not schemas:
            return ready
        for w in work:
            if w.code is not None or w.event is None:
                continue
            schema = schemas.get(str(w.event.event_type))
            if schema is None or _decode_properties(w, schema) is not None:
                continue
            for name, value in w.properties.items():
                treatment = schema.fields[name].treatment
                pure = self._pure.get(treatment)
                if pure is not None and (treatment, name, value) not in ready:
                    ready[(treatment, name, value)] = pure.one(name, value)
        return ready

    def _shape_early(self, work: list[_Work], ready: _Ready) -> None:
        """Events whose subject's consent state and key this process already holds are
        decided, minimised, treated and sealed here, before the transaction, so that
        processes writing one database in turn do this side by side. Nothing here decides
        what is stored: the transaction reads every subject's version, decides again, and
        keeps an early row only where nothing it was worked out from has changed (_Early);
        it works out the rest itself."""
        purposes = self.consent.registry.cached()
        if not purposes:
            return
        now = clock.now()
        found = []
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
            if code is not None:
                continue
            plan = self._plan(w, w.schema, allowed, purposes, state)
            values = {}
            for name, treatment, _sealed in plan.treat:
                key = (treatment, name, w.properties[name])
                if key not in ready:
                    break
                values[name] = ready[key]
            else:
                found.append((w, w.schema, state, allowed, plan, values, sealer))
        for (w, schema, state, allowed, plan, values, sealer), nonce in zip(
            found, nonces(len(found)), strict=True
        ):
            shaped = _shape(w, plan, values, sealer, nonce)
            w.early = _Early(state, purposes, schema, allowed, shaped)

    def _decision(
        self,
        w: _Work,
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

    def _plan(
        self,
        w: _Work,
        schema: CompiledSchema,
        allowed: list[str],
        purposes: dict[str, Purpose],
        state: SubjectConsent,
    ) -> Plan:
        return self.planner.plan(
            schema.fields, schema.has_special, allowed, tuple(w.properties), purposes, state
        )

    def _transact(self, work: list[_Work], actor: str, ready: _Ready) -> None:
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
            self._store(conn, work, states, purposes, version, ready)
            accepted = [w for w in work if w.code is None]
            if accepted:
                used = sorted({p for w in accepted for p in w.purposes})
                self.consent.registry.mark_used(conn, used, purposes)
            audit.record(conn, AuditAction.EVENTS_INGESTED, actor=actor, details=_summary(work))

    def _parse(self, position: int, raw: msgspec.Raw, latest: datetime) -> _Work:
        event, detail = decode.event(raw, latest)
        if event is None:
            return _Work(position, decode.event_id_of(raw), "invalid_event", detail)
        work = _Work(position, event.event_id, event=event)
        subject = event.subject
        if detail is not None or subject is None:
            work.code, work.detail = "invalid_event", detail
            return work
        pairs = None
        if subject.identities is not None:
            pairs = [(i.type, i.value) for i in subject.identities]
        try:
            work.ref = subject_ref(subject.subject_id, pairs, self.default_region)
        except ConsentryError as exc:
            # The code names the rule; the error's own message may quote the identity.
            work.code, work.detail = "invalid_event", f"subject: {exc.code}"
        return work

    def _classify(
        self, conn: Connection, work: list[_Work], schemas: dict[str, CompiledSchema]
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

    def _resolve(self, conn: Connection, work: list[_Work], actor: str) -> None:
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

    def _states(self, conn: Connection, work: list[_Work]) -> dict[str, SubjectConsent]:
        """Each subject's state at the version read now, inside the batch's transaction."""
        ids = {w.subject_id for w in work if w.code is None and w.subject_id}
        states = self.consent.cache.for_commit(conn, ids)
        for w in work:
            if w.code is None and w.subject_id not in states:
                w.code, w.detail = "invalid_event", "subject: no subject with this subject_id"
        return states

    def _decide(
        self,
        work: list[_Work],
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

    def _refusal(self, w: _Work, state: SubjectConsent, now: datetime) -> str | None:
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

    def _store(
        self,
        conn: Connection,
        work: list[_Work],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        version: int,
        ready: _Ready,
    ) -> None:
        accepted = [w for w in work if w.code is None]
        if not accepted:
            return
        shaped = [_early(w, states, purposes) for w in accepted]
        late = [n for n, s in enumerate(shaped) if s is None]
        if late:
            redone = self._shape_late(conn, [accepted[n] for n in late], states, purposes, ready)
            for n, one in zip(late, redone, strict=True):
                shaped[n] = one
        done = [s for s in shaped if s is not None]
        # Taken in the transaction, after the states were read: the withdrawal purge counts an
        # event received at or before a withdrawal as stored under the consent it withdrew.
        received_at = (clock.rfc3339(clock.now()),)
        sql.insert_events(conn, [s.row[:4] + received_at + s.row[4:] for s in done])
        systems = {} if self.outbox is None else self.outbox.systems(conn, version)
        if self.outbox is not None and systems:
            fields = [s.plan.fields for s in done]
            kept = [s.clear | s.personal for s in done]
            self.outbox.enqueue(conn, systems, accepted, fields, kept, states, purposes)

    def _shape_late(
        self,
        conn: Connection,
        accepted: list[_Work],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        ready: _Ready,
    ) -> list[_Shaped]:
        """Accepted events not shaped before the transaction (or whose early shape no longer
        stands): planned, treated and sealed here."""
        sealers = {
            s: self.subjects.keys.sealer(conn, s) for s in {str(w.subject_id) for w in accepted}
        }
        plans: list[Plan] = []
        treated: list[dict[str, Any]] = [{} for _ in accepted]
        # Each treatment other than keep runs once per batch over every value it must treat
        # (pure ones mostly ran before the transaction: `ready`).
        queues: dict[Treatment, list[tuple[int, str, Item]]] = defaultdict(list)
        for n, w in enumerate(accepted):
            schema = w.schema
            if schema is None:
                raise ValueError("only classified events are stored")
            subject_id = str(w.subject_id)
            plan = self._plan(w, schema, w.purposes, purposes, states[subject_id])
            plans.append(plan)
            done = treated[n]
            for name, treatment, _sealed in plan.treat:
                value = w.properties[name]
                if treatment in self._pure and (treatment, name, value) in ready:
                    done[name] = ready[(treatment, name, value)]
                    continue
                item = Item(subject_id, name, value, sealers[subject_id])
                queues[treatment].append((n, name, item))
        for treatment, queue in queues.items():
            results = self.treaters[treatment].treat(conn, [item for _, _, item in queue])
            for (n, name, _), value in zip(queue, results, strict=True):
                treated[n][name] = value
        return [
            _shape(w, plan, values, sealers[str(w.subject_id)], nonce)
            for w, plan, values, nonce in zip(
                accepted, plans, treated, nonces(len(accepted)), strict=True
            )
        ]


def _early(
    w: _Work, states: dict[str, SubjectConsent], purposes: dict[str, Purpose]
) -> _Shaped | None:
    """The event's early shape, if it still stands (see _Early)."""
    early = w.early
    if (
        early is None
        or early.state is not states.get(str(w.subject_id))
        or early.purposes is not purposes
        or early.schema is not w.schema
        or early.allowed != w.purposes
    ):
        return None
    return early.shaped


def _shape(w: _Work, plan: Plan, values: dict[str, Any], sealer: Sealer, nonce: bytes) -> _Shaped:
    """The event's row: kept values in clear, personal ones sealed under the subject's key."""
    event, schema = w.event, w.schema
    if event is None or event.occurred_at is None or schema is None or w.ref is None:
        raise ValueError("only classified events are stored")
    if w.event_id is None:
        raise ValueError("only events with an id are stored")
    subject_id = str(w.subject_id or w.ref.subject_id)
    clear, personal = minimise.split(plan, w.properties, values)
    sealed = None
    if personal:
        sealed = sealer.seal(minimise.encode_bytes(personal), sealing.event_aad(w.event_id), nonce)
    row = (
        w.event_id,
        schema.schema.event_type,
        schema.schema.version,
        clock.rfc3339(event.occurred_at),
        subject_id,
        plan.purposes_json,
        minimise.encode(clear),
        sealed,
        plan.field_purposes_json,
        plan.purpose_bits,
        minimise.subject_key(subject_id),
    )
    return _Shaped(plan, row, clear, personal)


def _decode_properties(w: _Work, schema: CompiledSchema) -> str | None:
    """The event's properties decoded against `schema` into w.properties (and w.schema);
    the field's code (and w.detail) when they do not fit it."""
    if w.event is None:
        return "invalid_event"
    try:
        decoded = schema.decoder.decode(w.event.properties)
    except msgspec.ValidationError as exc:
        code, w.detail = decode.describe(str(exc), "properties")
        return code
    except (msgspec.DecodeError, RecursionError):
        w.detail = "properties is not a JSON object the schema can read"
        return "invalid_field"
    w.schema = schema
    w.properties = {k: v for k, v in msgspec.structs.asdict(decoded).items() if v is not None}
    return None


def _certify(work: list[_Work], batch: decode.Batch) -> None:
    """The JSON rules (consentry.jsonlimits) over the events that did not decode whole against
    a schema. One that did is within them already: every value decoded into a typed field, so
    nothing in it nests deeper than the event's own shape, and integers are bounded by the
    schema's decoder. A breach refuses the batch whole, as on every other route."""
    for w in work:
        if w.schema is None:
            problem = jsonlimits.problem_of(bytes(batch.events[w.position]))
            if problem is not None:
                raise problem


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, ConstraintViolation | SerializationFailure)


def _mark_duplicates(work: list[_Work]) -> None:
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


def _summary(work: Sequence[_Work]) -> dict[str, Any]:
    rejected: dict[str, int] = defaultdict(int)
    for w in work:
        if w.code:
            rejected[w.code] += 1
    return {
        "accepted": sum(1 for w in work if w.code is None),
        "rejected": dict(sorted(rejected.items())),
    }
