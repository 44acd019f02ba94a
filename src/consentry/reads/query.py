"""Purpose-scoped reads: counts (`POST /v1/query`) and event pages (`GET /v1/events`), each
answered from one snapshot with the subjects the purpose may not read left out in SQL, and
each an audit entry with the policy version it was answered under."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.models import Purpose
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import FieldNotReadable, InvalidQuery, PrivacyBudgetExhausted
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import SchemaRegistry
from consentry.reads import dp
from consentry.reads.visibility import Visibility
from consentry.storage import reads as sql
from consentry.storage.engine import AnyRow, Store

MAX_GROUP_BY = 5
MAX_PAGE = 1_000
# Values that stay as they were stored: kept as they came, or pseudonymised or tokenised.
_READABLE = frozenset({Treatment.KEEP, Treatment.PSEUDONYMISE, Treatment.TOKENISE})
_JSON = msgspec.json.Decoder()
_NAMES_HELD = 100_000


@dataclass(frozen=True, slots=True)
class Scope:
    """A read's purpose and filters, checked against the configuration."""

    purpose: Purpose
    event_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def filters(self) -> sql.Filters:
        return sql.Filters(
            self.purpose.key,
            self.purpose.bit,
            self.event_type,
            None if self.start is None else clock.rfc3339(self.start),
            None if self.end is None else clock.rfc3339(self.end),
        )

    def described(self) -> dict[str, Any]:
        """The scope as the audit entry and an export record it."""
        return {
            "purpose": self.purpose.key,
            "event_type": self.event_type,
            "from": None if self.start is None else clock.rfc3339(self.start),
            "to": None if self.end is None else clock.rfc3339(self.end),
        }


@dataclass(frozen=True, slots=True)
class Query:
    scope: Scope
    metric: str
    group_by: tuple[str, ...] = ()
    dp_epsilon: float | None = None
    dp_bound: int = dp.DEFAULT_BOUND


@dataclass(frozen=True, slots=True)
class Answer:
    rows: list[dict[str, Any]]
    policy_version: int
    extra: dict[str, Any] = field(default_factory=dict)


class Reads:
    """Counts and event pages; every one filtered by the consent that holds as it is read."""

    def __init__(
        self,
        store: Store,
        purposes: PurposeRegistry,
        schemas: SchemaRegistry,
        visibility: Visibility,
        subject_names: SubjectNames,
        dp_budget: float,
    ) -> None:
        self.store = store
        self.purposes = purposes
        self.schemas = schemas
        self.visibility = visibility
        self.subject_names = subject_names
        self.dp_budget = dp_budget

    def scope(
        self,
        conn: Connection,
        purpose: str,
        event_type: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> Scope:
        """The read's scope; UnknownPurpose or InvalidQuery when it cannot be answered."""
        known = self.purposes.get(conn, purpose)
        if event_type is not None and event_type not in self.schemas.all(conn):
            raise InvalidQuery(f"no schema for event type {event_type!r}")
        if start is not None and end is not None and start >= end:
            raise InvalidQuery("`from` must be before `to`")
        return Scope(known, event_type, start, end)

    def query(self, query: Query, *, key_id: str, actor: str) -> Answer:
        """A count (or distinct subjects) the purpose may see, optionally grouped or noisy."""
        with self.store.read(snapshot=True) as conn:
            self._check_group_by(conn, query)
            version = sql.policy_version(conn)
            excluded = self.visibility.excluded(conn, query.scope.purpose, version)
            filters = query.scope.filters()
            distinct = query.metric == "count_subjects"
            if query.dp_epsilon is not None and not distinct:
                value = sql.bounded_count(conn, filters, excluded.keys, query.dp_bound)
                counted: list[tuple[Any, ...]] = [(value,)]
            else:
                counted = sql.count(
                    conn,
                    filters,
                    excluded.keys,
                    distinct_subjects=distinct,
                    group_by=query.group_by,
                )
        details = query.scope.described() | {
            "metric": query.metric,
            "group_by": list(query.group_by),
            "policy_version": version,
        }
        extra: dict[str, Any] = {}
        if query.dp_epsilon is not None:
            details |= {"dp_epsilon": query.dp_epsilon}
            extra = {"dp_epsilon": query.dp_epsilon}
        sensitivity = 1 if query.metric == "count_subjects" else query.dp_bound
        if query.dp_epsilon is not None:
            # Nothing may fail after the budget is spent.
            dp.prepare(query.dp_epsilon, sensitivity)
        with self.store.write() as conn:
            if query.dp_epsilon is not None:
                day = clock.now().date().isoformat()
                if not sql.spend(conn, key_id, day, query.dp_epsilon, self.dp_budget):
                    left = max(0.0, self.dp_budget - sql.spent(conn, key_id, day))
                    raise PrivacyBudgetExhausted(
                        f"this key has {left:g} of {self.dp_budget:g} epsilon left today",
                        remaining=round(left, 6),
                    )
            audit.record(conn, AuditAction.DATA_QUERIED, actor=actor, details=details)
        if query.dp_epsilon is not None:
            counted = [(dp.noisy(int(counted[0][0]), query.dp_epsilon, sensitivity),)]
        rows = [
            dict(zip(query.group_by, row[:-1], strict=True)) | {"value": int(row[-1])}
            for row in counted
        ]
        return Answer(rows, version, extra)

    def page(
        self, scope: Scope, after: int, limit: int, *, actor: str
    ) -> tuple[list[dict[str, Any]], int | None, int]:
        """(events, the position after the last, policy version) of one page."""
        with self.store.read(snapshot=True) as conn:
            version = sql.policy_version(conn)
            excluded = self.visibility.excluded(conn, scope.purpose, version)
            rows = sql.page(conn, scope.filters(), excluded.keys, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [self.shape(row, scope.purpose.key) for row in rows]
        with self.store.write() as conn:
            details = scope.described() | {"events": len(items), "policy_version": version}
            audit.record(conn, AuditAction.DATA_READ, actor=actor, details=details)
        return items, int(rows[-1].seq) if more else None, version

    def shape(self, row: AnyRow, purpose: str) -> dict[str, Any]:
        """One event as a purpose sees it: values stored in clear and visible to it (never a
        sealed value), and the subject as a pseudonym of that purpose."""
        properties: dict[str, Any] = _JSON.decode(row.properties)
        if row.field_purposes is not None:
            only: Mapping[str, Sequence[str]] = _JSON.decode(row.field_purposes)
            properties = {
                k: v for k, v in properties.items() if k not in only or purpose in only[k]
            }
        return {
            "event_id": row.event_id,
            "event_type": row.event_type,
            "occurred_at": _stored_time(row.occurred_at),
            "subject_pseudonym": self.subject_names.of(purpose, row.subject_id),
            "purpose": purpose,
            "properties": properties,
        }

    def _check_group_by(self, conn: Connection, query: Query) -> None:
        if not query.group_by:
            return
        if query.scope.event_type is None:
            raise InvalidQuery("group_by needs an event_type: fields belong to a schema")
        schema = self.schemas.all(conn)[query.scope.event_type]
        for name in query.group_by:
            spec = schema.fields.get(name)
            if spec is None:
                raise InvalidQuery(f"{query.scope.event_type!r} has no field {name!r}")
            if spec.treatment not in _READABLE or spec.sealed or spec.special:
                raise FieldNotReadable(
                    f"{name!r} is not stored in a form analysts may read", field=name
                )
            if spec.purposes is not None and query.scope.purpose.key not in spec.purposes:
                raise FieldNotReadable(
                    f"{name!r} is kept only for {sorted(spec.purposes)}", field=name
                )


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


def _stored_time(value: Any) -> str:
    """RFC 3339 as clock.rfc3339 spells it, which is how times are stored (UTCTime)."""
    return clock.rfc3339(value) if isinstance(value, datetime) else str(value)
