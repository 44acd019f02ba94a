"""Data-protection impact assessments (Art. 35), one per purpose: computed (governance/dpia.py)
from purposes, schemas, the data map and volumes whenever the configuration version has moved
(or a day has passed, for the volumes), stored with the reviews staff record, every change
audited; the reviewer's name and the DPO's advice sealed, never in the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.audit.log import SYSTEM_ACTOR
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import AssessmentNotFound, DpoAdviceRequired, InvalidAssessment
from consentry.governance import dpia, ropa, transfers
from consentry.governance.datamap import DataMap
from consentry.governance.models import Region
from consentry.ingest.schemas import SchemaRegistry
from consentry.keys.envelope import Sealer
from consentry.storage import assessments as sql
from consentry.storage import inferences as inferences_sql
from consentry.storage.configuration import config_version
from consentry.storage.engine import AnyRow, Store

NOT_REQUIRED = "not_required"
REQUIRED = "required"
IN_PROGRESS = "in_progress"
APPROVED = sql.APPROVED
REJECTED = "rejected"
PRIOR_CONSULTATION = "prior_consultation"
# What PUT may record (API.md); `not_required` is only ever computed.
STATUSES = (REQUIRED, IN_PROGRESS, APPROVED, REJECTED, PRIOR_CONSULTATION)
# A conclusion of the assessment: given only with the DPO's advice (Art. 35(2)), and reopened
# (back to `required`) when the triggers it was reached on change.
CONCLUDED = frozenset({APPROVED, REJECTED, PRIOR_CONSULTATION})
# Volumes move without a configuration change: computed again at least this often.
REFRESH = timedelta(days=1)
# Required and not approved for this long: alert `assessment_overdue`.
OVERDUE_AFTER = timedelta(days=30)
# A review dated ahead of the server's clock by more than this is refused.
_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Review:
    status: str
    reviewer: str
    dpo_advice: str | None
    reviewed_at: datetime | None


class Assessments:
    def __init__(
        self,
        store: Store,
        key: bytes,
        purposes: PurposeRegistry,
        schemas: SchemaRegistry,
        datamap: DataMap,
        exporter: Region,
        large_scale_subjects: int,
    ) -> None:
        self.store = store
        self._sealer = Sealer(key)
        self.purposes = purposes
        self.schemas = schemas
        self.datamap = datamap
        self.exporter = exporter
        self.large_scale_subjects = large_scale_subjects

    def refresh(self, *, actor: str = SYSTEM_ACTOR, force: bool = False) -> bool:
        """Compute every assessment again when the configuration version has moved since the
        last time, or REFRESH has passed (or `force`); True when it did. One read otherwise.
        The counting is done in a read transaction: the writer's lock (which holds every
        ingest batch on SQLite) is taken only to store what was found."""
        now = clock.now()
        with self.store.read() as conn:
            version = config_version(conn)
            if not force and not _stale(sql.state(conn), version, now):
                return False
            found = self._evaluate(conn, version, now)
        with self.store.write() as conn:
            row = sql.lock_state(conn)
            current = config_version(conn)
            if not force and not _stale(row, current, now):
                return False
            if current != version:
                # The configuration moved meanwhile (seldom): evaluated again, under the lock.
                version, found = current, self._evaluate(conn, current, now)
            self._store_all(conn, version, found, now, actor)
        return True

    def sweep(self, actor: str) -> dict[str, int]:
        """The periodic step (run with the retention sweep): 1 when it computed again."""
        return {"recomputed": int(self.refresh(actor=actor))}

    def listing(self, required: bool | None = None) -> list[dict[str, Any]]:
        """Every purpose's assessment (only those required, or not, when asked), computed
        again first if the configuration has changed."""
        self.refresh()
        now = clock.now()
        with self.store.read() as conn:
            rows = sql.all_rows(conn)
        items = [self._out(row, now) for row in rows.values()]
        return [i for i in items if required is None or i["required"] is required]

    def get(self, assessment_id: str) -> dict[str, Any]:
        self.refresh()
        with self.store.read() as conn:
            row = sql.get(conn, assessment_id)
        if row is None:
            raise AssessmentNotFound(f"no assessment {assessment_id!r}", id=assessment_id)
        return self._out(row, clock.now())

    def review(self, assessment_id: str, review: Review, *, actor: str) -> dict[str, Any]:
        """Record an assessment's status with the reviewer, the DPO's advice and the date."""
        now = clock.now()
        at = review.reviewed_at or now
        if at > now + _SKEW:
            raise InvalidAssessment("reviewed_at is in the future", field="reviewed_at")
        if review.status in CONCLUDED and not review.dpo_advice:
            raise DpoAdviceRequired(
                f"an assessment is {review.status} only with the DPO's advice (Art. 35(2))"
            )
        self.refresh()
        with self.store.write() as conn:
            # The computation's lock first: a recompute reads every row, then writes each from
            # what it read, and must not write over a review committed in between.
            sql.lock_state(conn)
            row = sql.get(conn, assessment_id, lock=True)
            if row is None:
                raise AssessmentNotFound(f"no assessment {assessment_id!r}", id=assessment_id)
            triggers = json.loads(row.computed)["triggers"]
            sealed = {"reviewer": review.reviewer, "dpo_advice": review.dpo_advice}
            values: dict[str, Any] = {
                "status": review.status,
                "reviewed_triggers": json.dumps(triggers),
                "reviewed_at": at,
                "review_actor": actor,
                "sealed": self._sealer.seal(
                    json.dumps(sealed, sort_keys=True).encode(), _aad(assessment_id)
                ),
                "updated_at": now,
            }
            # Reopened by hand (or never timed): its 30 days run from now.
            reopened = row.status in CONCLUDED or row.required_since is None
            if review.status not in CONCLUDED and row.required and reopened:
                values["required_since"] = now
            sql.update_row(conn, assessment_id, values)
            audit.record(
                conn,
                AuditAction.ASSESSMENT_REVIEWED,
                actor=actor,
                details={
                    "assessment_id": assessment_id,
                    "status": review.status,
                    "previous_status": row.status,
                    "reviewed_at": clock.rfc3339(at),
                    "triggers": triggers,
                    "dpo_advice": bool(review.dpo_advice),
                },
            )
            stored = sql.get(conn, assessment_id)
        if stored is None:
            raise AssessmentNotFound(f"no assessment {assessment_id!r}", id=assessment_id)
        return self._out(stored, now)

    def _evaluate(
        self, conn: Connection, version: int, now: datetime
    ) -> tuple[dict[str, dpia.Evaluation], dict[str, dpia.Scope]]:
        """Each purpose's evaluation and scope at `version` (reads only)."""
        purposes = self.purposes.all(conn, version)
        schemas = self.schemas.all(conn, version)
        systems = self.datamap.all(conn, version)
        granted = sql.granted_subjects(conn)
        live = sql.live_subjects(conn)
        per_purpose, every_minor = sql.minors(conn)
        regime = transfers.regime(self.exporter, None)
        scopes = {}
        for key, purpose in purposes.items():
            event_types, categories = ropa.kept_for(key, schemas)
            serving = [s for _, s in sorted(systems.items()) if key in s.purposes]
            for system in serving:
                categories |= system.data_categories
            if purpose.needs_consent:
                subjects, (minors, under_13) = granted.get(key, 0), per_purpose.get(key, (0, 0))
            else:
                subjects, (minors, under_13) = live, every_minor
            scopes[key] = dpia.Scope(
                purpose=key,
                event_types=tuple(event_types),
                categories=frozenset(categories),
                systems=tuple(s.system_id for s in serving),
                unprotected_transfers=tuple(
                    s.system_id
                    for s in serving
                    if transfers.without_adequacy(s, regime, now.date())
                ),
                subjects=subjects,
                minors=minors,
                under_13=under_13,
            )
        evaluations = dpia.evaluate_all(
            purposes, scopes, self.large_scale_subjects, inferences_sql.purposes_inferred(conn)
        )
        return evaluations, scopes

    def _store_all(
        self,
        conn: Connection,
        version: int,
        found: tuple[dict[str, dpia.Evaluation], dict[str, dpia.Scope]],
        now: datetime,
        actor: str,
    ) -> None:
        """The evaluations stored (under the state's lock), each change audited."""
        evaluations, scopes = found
        existing = sql.all_rows(conn)
        for key, ev in evaluations.items():
            _store(conn, existing.get(key), key, ev, scopes[key], now, actor)
        sql.delete_rows(conn, set(existing) - set(evaluations))
        sql.put_state(conn, version, now, exists=True)

    def _out(self, row: AnyRow, now: datetime) -> dict[str, Any]:
        computed = json.loads(row.computed)
        since = row.required_since if row.required else None
        review = None
        if row.sealed is not None:
            texts = json.loads(self._sealer.open(bytes(row.sealed), _aad(row.assessment_id)))
            review = {
                "reviewer": texts["reviewer"],
                "dpo_advice": texts["dpo_advice"],
                "reviewed_at": clock.rfc3339(row.reviewed_at),
                "triggers": json.loads(row.reviewed_triggers),
                "outdated": json.loads(row.reviewed_triggers) != computed["triggers"],
            }
        return {
            "assessment_id": row.assessment_id,
            "purpose": row.assessment_id,
            "required": bool(row.required),
            "score": int(row.score),
            "triggers": computed["triggers"],
            "art35_3": computed["art35_3"],
            "wp248_criteria": computed["criteria"],
            "scope": computed["scope"],
            "status": row.status,
            "required_since": clock.rfc3339(since) if since else None,
            "days_since_required": (now - since).days if since else None,
            "review": review,
            "computed_at": clock.rfc3339(row.computed_at),
        }


def overdue(conn: Connection, now: datetime) -> int:
    """Assessments required and not approved for OVERDUE_AFTER or longer (as last computed)."""
    return sql.overdue(conn, now - OVERDUE_AFTER)


def _stale(state: AnyRow | None, version: int, now: datetime) -> bool:
    return state is None or state.config_version != version or now - state.computed_at >= REFRESH


def _store(
    conn: Connection,
    old: AnyRow | None,
    key: str,
    ev: dpia.Evaluation,
    scope: dpia.Scope,
    now: datetime,
    actor: str,
) -> None:
    """Write one purpose's evaluation. A conclusion reached on other triggers is reopened
    (`required` again, its clock from now); a `required` no review has touched lapses to
    `not_required` when no longer required."""
    triggers = [t.value for t in ev.triggers]
    computed = {
        "triggers": triggers,
        "art35_3": list(ev.art35_3),
        "criteria": list(ev.criteria),
        "scope": {
            "event_types": list(scope.event_types),
            "data_categories": sorted(scope.categories),
            "systems": list(scope.systems),
            "transfers_without_adequacy": list(scope.unprotected_transfers),
            "subjects": scope.subjects,
            "minors": scope.minors,
        },
    }
    status = NOT_REQUIRED if old is None else str(old.status)
    since = None if old is None else old.required_since
    reviewed = None if old is None or old.reviewed_triggers is None else old.reviewed_triggers
    if not ev.required:
        status = NOT_REQUIRED if status == REQUIRED else status
        since = None
    else:
        if status == NOT_REQUIRED:
            status = REQUIRED
        if status in CONCLUDED and reviewed is not None and json.loads(reviewed) != triggers:
            status, since = REQUIRED, now
        since = since or now
    values = {
        "status": status,
        "required": ev.required,
        "score": ev.score,
        "computed": json.dumps(computed, sort_keys=True),
        "computed_at": now,
        "required_since": since,
        "updated_at": now,
    }
    before = None if old is None else json.loads(old.computed)["triggers"]
    if old is None:
        sql.insert_row(conn, {"assessment_id": key} | values)
    else:
        sql.update_row(conn, key, values)
    if old is None or before != triggers or old.status != status or old.required != ev.required:
        audit.record(
            conn,
            AuditAction.ASSESSMENT_CHANGED,
            actor=actor,
            details={
                "assessment_id": key,
                "required": ev.required,
                "score": ev.score,
                "triggers": triggers,
                "previous_triggers": before,
                "status": status,
                "previous_status": None if old is None else old.status,
            },
        )


def _aad(assessment_id: str) -> bytes:
    return b"consentry:assessment-review:" + assessment_id.encode()
