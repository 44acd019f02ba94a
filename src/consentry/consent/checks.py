"""Consent checks and tokens: the decision for one purpose now, a subject's state, and the
signed token of what it granted (reads; the writes are ConsentService's)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import compliance, policy, signals, tokens
from consentry.consent.cache import ConsentCache
from consentry.consent.models import Decision, Purpose, Reason, SubjectConsent
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import SubjectErased, UnknownPurpose
from consentry.keys.signing import SigningKeys
from consentry.settings import Settings
from consentry.storage import consent as sql
from consentry.storage.engine import Store
from consentry.subjects.models import SubjectRef
from consentry.subjects.resolve import Subjects


class Checks:
    """Decisions, states and tokens over the ledger's cache."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        subjects: Subjects,
        registry: PurposeRegistry,
        cache: ConsentCache,
        signing: SigningKeys,
    ) -> None:
        self.settings = settings
        self.store = store
        self.subjects = subjects
        self.registry = registry
        self.cache = cache
        self.signing = signing

    def gpc_would_change(self, ref: SubjectRef) -> bool:
        """Whether a GPC signal for `ref` would change the ledger (one read, no write): a
        browser repeats the signal on every request."""
        with self.store.read() as conn:
            subject = self.subjects.find(conn, ref)
            if subject is None:
                return True
            state = self.cache.fresh(conn, subject.subject_id)
            return signals.gpc_changes(state, self.registry.all(conn))

    def check_held(self, ref: SubjectRef, purpose_key: str) -> Decision | None:
        """The decision without a transaction, when the subject is named by id and its state
        and the purposes are held at the versions one statement reads now (SQLite); None
        when `check` must decide."""
        if ref.subject_id is None:
            return None
        peeked = sql.peek_versions(self.store, ref.subject_id)
        if peeked is None:
            return None
        version, config = peeked
        purposes = self.registry.at(config)
        if purposes is None or purpose_key not in purposes:
            return None
        state = None if version is None else self.cache.get(ref.subject_id)
        if version is not None and (state is None or state.version != version):
            return None
        return policy.decide(purposes[purpose_key], state, clock.now())

    def check_now(self, ref: SubjectRef, purpose_key: str) -> Decision:
        """`check` in its own read, or without one when `check_held` can answer."""
        held = self.check_held(ref, purpose_key)
        if held is not None:
            return held
        with self.store.read() as conn:
            return self.check(conn, ref, purpose_key)

    def check(self, conn: Connection, ref: SubjectRef, purpose_key: str) -> Decision:
        """The decision for one purpose now; an unknown person is `never_asked`."""
        subject_id = ref.subject_id
        if subject_id is None:
            found = self.subjects.find(conn, ref)
            subject_id = found.subject_id if found else None
        if subject_id is None:
            # Nobody known; but identities of a person erased answer subject_erased.
            gone = bool(ref.identities) and self.subjects.tombstoned(conn, ref.identities)
            state = SubjectConsent(subject_id="", erased=True) if gone else None
            return policy.decide(self.registry.get(conn, purpose_key), state, clock.now())
        version, config = sql.versions(conn, subject_id)
        purpose = self.registry.all(conn, config).get(purpose_key)
        if purpose is None:
            raise UnknownPurpose(f"no purpose {purpose_key!r}", purpose=purpose_key)
        state = self.cache.fresh(conn, subject_id, version) if version is not None else None
        return policy.decide(purpose, state, clock.now())

    def state(self, conn: Connection, subject_id: str) -> SubjectConsent:
        """The subject's current state; SubjectErased for an erased subject, whose consent is
        neither shown nor vouched for by a token (what is kept as proof is listed by the
        erasure's result)."""
        self.subjects.get(conn, subject_id)
        state = self.cache.fresh(conn, subject_id)
        if state.erased:
            raise SubjectErased(f"subject {subject_id} has been erased", subject_id=subject_id)
        return state

    def compliance(self, conn: Connection, subject_id: str) -> compliance.Compliance:
        """The subject's compliance status now, from the check's reason per consent-based
        purpose. An erased subject is ERASED, with no purposes: what it had consented to is
        neither shown nor counted any more (docs/decisions.md)."""
        self.subjects.get(conn, subject_id)
        state = self.cache.fresh(conn, subject_id)
        return compliance.assess(subject_id, state, self.registry.all(conn), clock.now())

    def token(
        self, conn: Connection, subject_id: str
    ) -> tuple[SubjectConsent, tokens.ConsentToken]:
        state = self.state(conn, subject_id)
        return state, self._token(state, self.registry.all(conn), clock.now())

    def _token(
        self, state: SubjectConsent, purposes: dict[str, Purpose], now: datetime
    ) -> tokens.ConsentToken:
        # `pur` names what the customer granted and still holds, nothing merely not opted out.
        granted = {
            key: state.purposes[key]
            for key, purpose in purposes.items()
            if purpose.needs_consent and policy.decide(purpose, state, now).reason is Reason.GRANTED
        }
        latest = max(granted.values(), key=lambda p: p.updated_at, default=None)
        # A token never vouches for a grant past its expiry (API.md, Retention: expiry).
        ends = [p.expires_at for p in granted.values() if p.expires_at is not None]
        return tokens.issue(
            self.signing,
            issuer=self.settings.issuer,
            subject_id=state.subject_id,
            purposes=sorted(granted),
            version=state.version,
            notice_sha256=latest.notice_sha256 if latest else None,
            now=now,
            lifetime=timedelta(seconds=self.settings.token_ttl_seconds),
            not_after=min(ends, default=None),
        )
