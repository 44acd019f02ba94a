"""Purpose-scoped reads: counts (`POST /v1/query`) and event pages (`GET /v1/events`), each
answered from one snapshot with the subjects the purpose may not read left out in SQL, showing
what the purpose may see (reads/view.py), small groups left out (reads/groups.py), and each an
audit entry with the policy version it was answered under."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent import policy
from consentry.consent.models import Purpose
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import FieldNotReadable, InvalidQuery, PrivacyBudgetExhausted
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema, SchemaRegistry
from consentry.keys.subject_keys import SubjectKeys
from consentry.operations import moment
from consentry.reads import dp, groups
from consentry.reads.groups import Tally
from consentry.reads.view import KEYS_HELD, SubjectNames, View
from consentry.reads.visibility import Visibility
from consentry.storage import reads as sql
from consentry.storage.engine import AnyRow, Store

MAX_GROUP_BY = 5
MAX_PAGE = 1_000


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
        keys: SubjectKeys,
        *,
        dp_budget: float,
        min_group_subjects: int,
    ) -> None:
        self.store = store
        self.purposes = purposes
        self.schemas = schemas
        self.visibility = visibility
        self.subject_names = subject_names
        self.keys = keys
        self.dp_budget = dp_budget
        self.min_group_subjects = min_group_subjects
        # How much one read holds at once (kept small by tests to cross the limits).
        self.keys_held = KEYS_HELD
        self.scan_chunk = groups.SCAN_CHUNK
        self.max_groups = groups.MAX_GROUPS

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

    def view(self, conn: Connection, purpose: Purpose) -> View:
        """A new read's view of events for `purpose` (schemas as they stand in `conn`)."""
        return View(
            purpose.key,
            self.keys,
            self.subject_names,
            self.schemas.all(conn),
            keys_held=self.keys_held,
        )

    def query(self, query: Query, *, key_id: str, actor: str) -> Answer:
        """A count (or distinct subjects) the purpose may see, optionally grouped or noisy;
        groups (or an ungrouped answer) drawn from fewer than the minimum of distinct subjects
        are left out, and counted in `suppressed`."""
        purpose = query.scope.purpose
        with self.store.read(snapshot=True) as conn:
            sealed = self._check_group_by(conn, query)
            version = sql.policy_version(conn)
            excluded = self.visibility.excluded(conn, purpose, version)
            filters = query.scope.filters()
            if query.group_by:
                if sealed is None:
                    tallies, union = groups.sql_tallies(
                        conn, filters, excluded, query.group_by, max_groups=self.max_groups
                    )
                else:
                    tallies, union = groups.opened_tallies(
                        conn,
                        self.view(conn, purpose),
                        filters,
                        excluded,
                        query.group_by,
                        sealed,
                        min_subjects=self.min_group_subjects,
                        every_subject=query.metric == "count_subjects",
                        max_groups=self.max_groups,
                        chunk=self.scan_chunk,
                    )
            else:
                tallies, union = [self._total(conn, query, filters, excluded.keys)], _no_union
            rows, suppressed = groups.shown(
                tallies, query.group_by, query.metric, self.min_group_subjects, union
            )
        details = query.scope.described() | {
            "metric": query.metric,
            "group_by": list(query.group_by),
            "policy_version": version,
        }
        extra: dict[str, Any] = {}
        if suppressed is not None:
            details |= {"suppressed_groups": suppressed["groups"]}
            extra["suppressed"] = suppressed
        if query.dp_epsilon is not None:
            details |= {"dp_epsilon": query.dp_epsilon}
            extra["dp_epsilon"] = query.dp_epsilon
        # A noisy answer left out releases nothing, so it spends no budget.
        epsilon = query.dp_epsilon if rows else None
        sensitivity = 1 if query.metric == "count_subjects" else query.dp_bound
        if epsilon is not None:
            # Nothing may fail after the budget is spent.
            dp.prepare(epsilon, sensitivity)
        with self.store.write() as conn:
            if epsilon is not None:
                day = clock.now().date().isoformat()
                if not sql.spend(conn, key_id, day, epsilon, self.dp_budget):
                    left = max(0.0, self.dp_budget - sql.spent(conn, key_id, day))
                    raise PrivacyBudgetExhausted(
                        f"this key has {left:g} of {self.dp_budget:g} epsilon left today",
                        remaining=round(left, 6),
                    )
            audit.record(conn, AuditAction.DATA_QUERIED, actor=actor, details=details)
        if epsilon is not None:
            rows = [{"value": dp.noisy(int(rows[0]["value"]), epsilon, sensitivity)}]
        return Answer(rows, version, extra)

    def _total(
        self, conn: Connection, query: Query, filters: sql.Filters, excluded: frozenset[int]
    ) -> Tally:
        """The ungrouped answer as one group: its value (each subject's events bounded for a
        noisy count) and the subjects it is drawn from (counted up to the minimum)."""
        if query.metric == "count_subjects":
            subjects = sql.total(conn, filters, excluded, distinct_subjects=True)
            return Tally((), subjects, subjects)
        if query.dp_epsilon is not None:
            value = sql.bounded_count(conn, filters, excluded, query.dp_bound)
        else:
            value = sql.total(conn, filters, excluded, distinct_subjects=False)
        drawn = 0
        if self.min_group_subjects > 1:
            drawn = sql.subjects_up_to(conn, filters, excluded, self.min_group_subjects)
        return Tally((), value, drawn)

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
            stopped = self.visibility.stopped(conn, scope.purpose, {row[4] for row in rows})
            shown = [row for row in rows if row[4] not in stopped] if stopped else rows
            items = self.view(conn, scope.purpose).items(conn, shown, excluded)
        with self.store.write() as conn:
            if stopped:
                record_stopped(conn, scope.purpose.key, rows, stopped, actor)
            details = scope.described() | {"events": len(items), "policy_version": version}
            audit.record(conn, AuditAction.DATA_READ, actor=actor, details=details)
        return items, int(rows[-1].seq) if more else None, version

    def _check_group_by(self, conn: Connection, query: Query) -> frozenset[str] | None:
        """The group_by fields must be ones the purpose may see; returns those stored sealed
        when the groups must be tallied from opened events (a sealed, special-category or
        sensitive field: whether it is shown depends on the subject), None when SQL can count
        them as stored."""
        if not query.group_by:
            return None
        if query.scope.event_type is None:
            raise InvalidQuery("group_by needs an event_type: fields belong to a schema")
        schema: CompiledSchema = self.schemas.all(conn)[query.scope.event_type]
        purpose = query.scope.purpose
        specs = []
        for name in query.group_by:
            spec = schema.fields.get(name)
            if spec is None:
                raise InvalidQuery(f"{query.scope.event_type!r} has no field {name!r}")
            if spec.treatment is Treatment.DROP:
                raise FieldNotReadable(f"{name!r} is never stored", field=name)
            if spec.purposes is not None and purpose.key not in spec.purposes:
                raise FieldNotReadable(
                    f"{name!r} is kept only for {sorted(spec.purposes)}", field=name
                )
            if spec.special and not policy.special_category_purpose(purpose):
                raise FieldNotReadable(
                    f"{name!r} is special-category data: only a purpose with a special "
                    "category condition may read it",
                    field=name,
                )
            specs.append(spec)
        if not any(spec.sealed or spec.special or spec.sensitive for spec in specs):
            return None
        return frozenset(spec.name for spec in specs if spec.sealed)


def record_stopped(
    conn: Connection, purpose: str, rows: Sequence[AnyRow], stopped: set[str], actor: str
) -> None:
    """Count and audit the rows of `stopped` subjects a read left out at the moment of use."""
    moment.record(
        conn,
        f"read:{purpose}",
        events=sum(1 for row in rows if row[4] in stopped),
        subjects=len(stopped),
        actor=actor,
        now=clock.now(),
    )


def _no_union(tallies: Sequence[Tally]) -> int:
    """An ungrouped answer is one group: never asked for a union of several."""
    return max((t.subjects for t in tallies), default=0)
