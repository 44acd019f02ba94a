"""What a read shows of each stored event: every field its purpose may see, sealed values opened
with the subject's data key (each key unwrapped once per read, nothing written anywhere in
clear); left out, fields whose own purposes exclude the purpose (as stored, and as the schema
says now), fields the schema now drops or no longer names, special-category fields it may
not see, and sensitive personal information a subject's limit keeps from it; and nothing at
all of a subject whose key is gone (erased)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema
from consentry.ingest.sealing import event_aad
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.reads.visibility import Excluded
from consentry.storage.engine import AnyRow

_JSON = msgspec.json.Decoder(dict[str, Any])
_FIELD_PURPOSES = msgspec.json.Decoder(dict[str, list[str]])
_NAMES_HELD = 100_000
# Unwrapped keys one read holds at most (a download over more subjects unwraps some again).
KEYS_HELD = 100_000
_HIDDEN_HELD = 10_000


class SubjectNames:
    """A subject's name in reads: a keyed pseudonym per purpose, so a read for one purpose
    cannot be joined with another's, nor with anything keyed by subject id."""

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self._known: dict[tuple[str, str], str] = {}

    def of(self, purpose: str, subject_id: str) -> str:
        name = self._known.get((purpose, subject_id))
        if name is None:
            mac = self._base.copy()
            mac.update(f"read\x00{purpose}\x00{subject_id}".encode())
            name = mac.hexdigest()[:32]
            if len(self._known) >= _NAMES_HELD:
                self._known.clear()
            self._known[(purpose, subject_id)] = name
        return name


@dataclass(frozen=True, slots=True)
class _Rules:
    """What an event type's schema, as it stands now, lets the reading purpose see."""

    # The current version (None: no schema): an event stored under another one may hold
    # fields the schema has since dropped.
    version: int | None
    # In the schema but not for this purpose now: dropped, or kept only for other purposes.
    refused: frozenset[str]
    # In the schema and for this purpose (special categories still decided per subject).
    allowed: frozenset[str]
    special: frozenset[str]
    # CCPA sensitive personal information (hidden from a purpose a subject's limit excludes).
    sensitive: frozenset[str]


def _rules(purpose: str, compiled: CompiledSchema | None) -> _Rules:
    if compiled is None:
        return _Rules(None, frozenset(), frozenset(), frozenset(), frozenset())
    refused = {
        name
        for name, spec in compiled.fields.items()
        if spec.treatment is Treatment.DROP
        or (spec.purposes is not None and purpose not in spec.purposes)
    }
    return _Rules(
        compiled.schema.version,
        frozenset(refused),
        frozenset(compiled.fields).difference(refused),
        frozenset(name for name, spec in compiled.fields.items() if spec.special),
        frozenset(name for name, spec in compiled.fields.items() if spec.sensitive),
    )


class View:
    """One read (a page, a count, a whole download) of events for one purpose. Holds the keys
    it unwrapped for as long as the read lasts, and only then: nothing is cached across reads,
    so no later read uses a key destroyed since (by this process or another). Within a long
    download, a subject erased meanwhile is left out by consent: the erasure marks it erased
    in the transaction that destroys its key."""

    def __init__(
        self,
        purpose: str,
        keys: SubjectKeys,
        names: SubjectNames,
        schemas: Mapping[str, CompiledSchema],
        *,
        keys_held: int = KEYS_HELD,
    ) -> None:
        self.purpose = purpose
        self._keys_held = keys_held
        self._keys = keys
        self._names = names
        self._schemas = schemas
        self._rules: dict[str, _Rules] = {}
        self._sealers: dict[str, Sealer | None] = {}
        self._named: dict[str, str] = {}
        self._hidden: dict[tuple[str, str | None, bool, bool], frozenset[str]] = {}

    def open_keys(self, conn: Connection, subject_ids: Iterable[str]) -> None:
        """Unwrap, in one batch from `conn`'s snapshot, the keys of these subjects not yet
        held; a subject without a key is remembered as such (its events are never shown).
        Past the keys a read may hold, all are let go and every subject of the batch is
        unwrapped again: a subject held until then would otherwise be taken for erased."""
        wanted = set(subject_ids)
        missing = wanted.difference(self._sealers)
        if not missing:
            return
        if len(self._sealers) + len(missing) > self._keys_held:
            self._sealers.clear()
            self._named.clear()
            missing = wanted
        opened = self._keys.open_many(conn, missing)
        for subject_id in missing:
            self._sealers[subject_id] = opened.get(subject_id)

    @property
    def sealers(self) -> Mapping[str, Sealer | None]:
        """Subject id -> its key as open_keys found it (None: erased, show nothing)."""
        return self._sealers

    def items(
        self, conn: Connection, rows: Sequence[AnyRow], excluded: Excluded, *, raw: bool = False
    ) -> list[dict[str, Any]]:
        """The rows (storage.reads.EVENT_FIELDS) as the purpose sees them, in order. `raw`:
        properties the purpose sees whole are given as their JSON (msgspec.Raw, for an
        encoder to copy), not decoded and encoded again."""
        # Runs once per event shown: rows unpacked as tuples (a named column costs several
        # times more), look-ups bound to locals, each subject's pseudonym made once a read.
        self.open_keys(conn, {row[4] for row in rows})
        purpose, sealers, hidden_of, names = self.purpose, self._sealers, self.hidden, self._named
        rules_of, special, limited = self.rules, excluded.special, excluded.limited
        items = []
        for row in rows:
            _seq, event_id, event_type, occurred_at, subject_id, clear, sealed, only, version = row
            sealer = sealers.get(subject_id)
            if sealer is None:
                continue
            opened = None if sealed is None else sealer.open(sealed, event_aad(event_id))
            hidden = hidden_of(event_type, only, subject_id in special, subject_id in limited)
            rules = rules_of(event_type)
            # Stored under the current schema: every field is one the schema names.
            current = version == rules.version
            properties: Any
            if raw and current and not hidden:
                properties = msgspec.Raw(_joined(clear, opened))
            else:
                properties = _JSON.decode(clear)
                if opened is not None:
                    properties.update(_JSON.decode(opened))
                for name in hidden:
                    properties.pop(name, None)
                if not current:
                    allowed = rules.allowed
                    properties = {k: v for k, v in properties.items() if k in allowed}
            pseudonym = names.get(subject_id)
            if pseudonym is None:
                pseudonym = names[subject_id] = self._names.of(purpose, subject_id)
            items.append(
                {
                    "event_id": event_id,
                    "event_type": event_type,
                    "occurred_at": occurred_at
                    if occurred_at.__class__ is str
                    else _stored_time(occurred_at),
                    "subject_pseudonym": pseudonym,
                    "purpose": purpose,
                    "properties": properties,
                }
            )
        return items

    def rules(self, event_type: str) -> _Rules:
        """The event type's current schema, as it bears on this read."""
        known = self._rules.get(event_type)
        if known is None:
            known = self._rules[event_type] = _rules(self.purpose, self._schemas.get(event_type))
        return known

    def hidden(
        self, event_type: str, field_purposes: str | None, special: bool, limited: bool = False
    ) -> frozenset[str]:
        """Fields of an event the purpose may not see: those the row shows only to other
        purposes (their own purposes, or special categories kept for others); those the
        current schema drops or keeps only for other purposes (narrowed since the event was
        stored); and, unless `special` (the subject's special-category data may be shown to
        the purpose), the special-category fields of its type; and, when `limited` (the
        subject's limit keeps its sensitive personal information from the purpose), the
        sensitive fields of its type. Fields the schema no longer names are left out by the
        caller (items)."""
        key = (event_type, field_purposes, special, limited)
        known = self._hidden.get(key)
        if known is not None:
            return known
        hidden: set[str] = set()
        if field_purposes is not None:
            only = _FIELD_PURPOSES.decode(field_purposes)
            hidden.update(name for name, serving in only.items() if self.purpose not in serving)
        rules = self.rules(event_type)
        hidden.update(rules.refused)
        if not special:
            hidden.update(rules.special)
        if limited:
            hidden.update(rules.sensitive)
        if len(self._hidden) >= _HIDDEN_HELD:
            self._hidden.clear()
        result = self._hidden[key] = frozenset(hidden)
        return result


def _joined(clear: str, opened: bytes | None) -> bytes:
    """One JSON object of an event's clear and opened values, joined as text: both are objects
    the pipeline encoded (the opened one authenticated by its seal), no field in both."""
    if opened is None or opened == b"{}":
        return clear.encode()
    if clear == "{}":
        return opened
    return clear[:-1].encode() + b"," + opened[1:]


def _stored_time(value: Any) -> str:
    """RFC 3339 as clock.rfc3339 spells it, which is how times are stored (UTCTime)."""
    return clock.rfc3339(value) if isinstance(value, datetime) else str(value)
