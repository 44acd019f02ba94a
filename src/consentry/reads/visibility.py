"""Whose events a purpose may read right now: every subject's current consent state, decided
by consent/policy.py, turned into the set of subject keys reads must leave out (and the sets of
subjects whose special-category fields the purpose may see, and whose sensitive personal
information it may not: a limit, CCPA §1798.121).

The set is remembered per purpose until the policy version moves (any consent, purpose,
schema or system change) or the first grant it relied on expires, so a steady stream of
reads costs one primary-key read each."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import policy
from consentry.consent.cache import ConsentCache
from consentry.consent.models import Purpose
from consentry.ingest.minimise import subject_key
from consentry.operations import moment
from consentry.storage import consent as consent_sql
from consentry.storage import reads as sql


@dataclass(frozen=True, slots=True)
class Excluded:
    """The subject keys a purpose may not read at `policy_version`, until `until`, and the
    readable subjects whose special-category fields (Art. 9/10) it may see, and those whose
    sensitive personal information it may not (their limit holds, CCPA §1798.121)."""

    keys: sql.KeySet
    policy_version: int
    until: datetime | None
    special: frozenset[str] = frozenset()
    limited: frozenset[str] = frozenset()


class Visibility:
    def __init__(self, cache: ConsentCache) -> None:
        self._cache = cache
        self._known: dict[str, Excluded] = {}
        self._lock = threading.Lock()

    def excluded(self, conn: Connection, purpose: Purpose, version: int) -> Excluded:
        """Subjects whose events `purpose` may not read: withdrawn, denied, never asked for a
        consent purpose, expired, erased, restricted or objected. `version` is the policy
        version read in the same snapshot as `conn`."""
        now = clock.now()
        with self._lock:
            known = self._known.get(purpose.key)
        if (
            known is not None
            and known.policy_version == version
            and (known.until is None or now < known.until)
        ):
            return known
        keys: set[int] = set()
        special: set[str] = set()
        limited: set[str] = set()
        may_special = policy.special_category_purpose(purpose)
        until: datetime | None = None
        for subject_id, consent_version in sql.all_subject_versions(conn):
            state = self._cache.fresh(conn, subject_id, int(consent_version))
            if not policy.decide(purpose, state, now).allowed:
                keys.add(subject_key(subject_id))
                continue
            if may_special and policy.special_category_allowed(purpose, state):
                special.add(subject_id)
            if not policy.sensitive_allowed(purpose, state):
                limited.add(subject_id)
            grant = state.purposes.get(purpose.key)
            if grant is not None and grant.expires_at is not None:
                until = grant.expires_at if until is None else min(until, grant.expires_at)
        result = Excluded(sql.KeySet(keys), version, until, frozenset(special), frozenset(limited))
        with self._lock:
            self._known[purpose.key] = result
        return result

    def stopped(
        self,
        conn: Connection,
        purpose: Purpose,
        subject_ids: set[str],
        allowed: moment.Allowed | None = None,
    ) -> set[str]:
        """The moment-of-use check of rows about to be returned (operations/moment.py): the
        subjects among them whose state, read in `conn` now, does not allow `purpose`.
        `allowed`: the read's own answers, kept across its chunks."""
        if not subject_ids:
            return set()
        now = clock.now()
        versions = consent_sql.subject_versions(conn, sorted(subject_ids), share=False)
        states = {s: self._cache.fresh(conn, s, versions[s]) for s in subject_ids if s in versions}
        uses = [(s, (purpose.key,)) for s in subject_ids]
        found = moment.unconsented(uses, states, {purpose.key: purpose}, now, allowed)
        return {s for s, _ in found}
