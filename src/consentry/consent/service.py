"""The consent API's semantics: validate a consent call whole, then record it in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import compliance, ledger, notices, policy, signals, tokens
from consentry.consent.cache import ConsentCache
from consentry.consent.checks import Checks
from consentry.consent.models import (
    AgeBand,
    Intent,
    LedgerEntry,
    Purpose,
    Source,
    State,
    SubjectConsent,
)
from consentry.consent.purposes import PurposeRegistry
from consentry.dsr.downstream import Downstream
from consentry.dsr.models import NoticeKind
from consentry.errors import (
    InvalidAgeBand,
    InvalidConsentState,
    InvalidJurisdiction,
    InvalidRequest,
    InvalidSource,
    NothingToRecord,
    SubjectErased,
    UnknownPurpose,
)
from consentry.keys.signing import SigningKeys
from consentry.settings import Settings
from consentry.storage import consent as sql
from consentry.storage.engine import Store
from consentry.subjects.models import Jurisdiction, SubjectRef
from consentry.subjects.resolve import Subjects


@dataclass(frozen=True, slots=True)
class ConsentWrite:
    ref: SubjectRef
    purposes: Mapping[str, str] = field(default_factory=dict)
    source: str = "api"
    notice: tuple[str, str] | None = None
    jurisdiction: str | None = None
    tcf: str | None = None
    gpc: bool = False
    explicit: bool = False
    age_band: str | None = None
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ConsentResult:
    state: SubjectConsent
    gpc_honored: bool
    token: tokens.ConsentToken


class ConsentService(Checks):
    """Consent writes and withdrawals over the ledger and the cache (and, from Checks, the
    checks and tokens). A denial or withdrawal reaches downstream systems through the same
    port as a request: pending deliveries cancelled, recipients told; every ledger change
    goes to it too (`consent_changed`: systems asking for consent events)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        subjects: Subjects,
        registry: PurposeRegistry,
        cache: ConsentCache,
        signing: SigningKeys,
        downstream: Downstream,
    ) -> None:
        super().__init__(settings, store, subjects, registry, cache, signing)
        self.downstream = downstream

    def record(self, write: ConsentWrite, *, actor: str) -> ConsentResult:
        """Record grants and denials, TC string and GPC signal included, in one transaction;
        the cache holds the new state before this returns."""
        with self.store.write() as conn:
            result = self._record(conn, write, actor)
        self.cache.committed(result.state)
        return result

    def withdraw(
        self, ref: SubjectRef, which: list[str] | None, source: str, *, gpc: bool, actor: str
    ) -> ConsentResult:
        """Withdraw purposes (None: every consent purpose, and any other with an entry). No
        notice and no verification: withdrawing is as easy as granting (Art. 7(3)). Once this
        returns, the new version is committed and cached, so no later decision allows it."""
        with self.store.write() as conn:
            result = self._withdraw(conn, ref, which, source, gpc=gpc, actor=actor)
        self.cache.committed(result.state)
        return result

    def _record(self, conn: Connection, write: ConsentWrite, actor: str) -> ConsentResult:
        purposes = self.registry.all(conn)
        source = _source(write.source)
        jurisdiction = _jurisdiction(write.jurisdiction)
        age_band = _age_band(write.age_band)
        intents, tcf = _intents(write, purposes, source)
        notice = None
        if write.notice is not None:
            notice = notices.get(conn, *write.notice)

        resolution = self.subjects.resolve(conn, write.ref, actor=actor, jurisdiction=jurisdiction)
        subject_id = resolution.subject.subject_id
        # Under the subject's row lock, the state the rules below read cannot change before
        # this transaction commits; a refusal rolls back the whole call, subject included.
        sql.lock_subject(conn, subject_id)
        erasure = _erasure(conn, subject_id)
        prior = (
            SubjectConsent(subject_id)
            if resolution.created
            else self.cache.fresh(conn, subject_id, remember=False)
        )
        band = age_band or prior.age_band
        # The write's jurisdiction, else the subject's, else EU (API.md, Conventions).
        where = (jurisdiction or resolution.subject.effective_jurisdiction).value
        evidence = write.evidence or {}
        confirmed = evidence.get("opt_in_confirmed") is True
        gpc_honored = write.gpc
        kept: list[Intent] = []
        for intent in intents.values():
            purpose = purposes[intent.purpose]
            if intent.state is State.GRANTED and policy.gpc_refuses_grant(
                purpose,
                intent.source,
                gpc_now=write.gpc,
                gpc_before=prior.gpc,
                opt_in_confirmed=confirmed,
            ):
                gpc_honored = True
                continue
            if intent.source is Source.GPC and signals.gpc_on_record(prior, intent.purpose):
                # A browser repeats its GPC signal on every request: a signal that changes
                # nothing adds no entry and no version (tokens stay fresh).
                continue
            if intent.state is State.GRANTED and purpose.needs_consent:
                policy.check_grant(
                    purpose,
                    notice,
                    explicit=write.explicit,
                    evidence=evidence,
                    band=band,
                    jurisdiction=where,
                    default_age=self.settings.digital_consent_age,
                )
            kept.append(intent)

        self._consents_anew(conn, subject_id, erasure, kept, actor)
        attributes: dict[str, Any] = {}
        if age_band is not None and age_band is not prior.age_band:
            attributes["age_band"] = age_band.value
        if write.gpc and not prior.gpc:
            attributes["gpc_opt_out"] = True
        if tcf is not None:
            attributes |= ledger.vendor_attributes(conn, prior, tcf.vendors, actor)
        sql.set_subject_attributes(conn, subject_id, attributes)
        now = clock.now()
        appended = ledger.append(
            conn,
            subject_id,
            kept,
            purposes,
            now=now,
            actor=actor,
            notice=notice,
            jurisdiction=where,
            explicit=write.explicit,
            evidence=write.evidence,
            sealer=self.subjects.keys.sealer(conn, subject_id),
        )
        if attributes and not kept:
            # An attribute change alone still changes decisions: give it a version of its own.
            sql.lock_subject_version(conn, subject_id, 1)
        self._opted_out(conn, subject_id, appended, purposes, actor)
        self.registry.mark_used(conn, sorted({i.purpose for i in kept}), purposes)
        return self._finish(conn, prior, appended, gpc_honored, now, purposes, actor)

    def _consents_anew(
        self, conn: Connection, subject_id: str, erasure: str | None, kept: list[Intent], actor: str
    ) -> None:
        """A person erased before who grants a purpose is a customer again: the tombstones
        of their identities go."""
        if erasure == "tombstone" and any(i.state is State.GRANTED for i in kept):
            self.subjects.clear_tombstone(conn, subject_id, actor=actor)

    def _withdraw(
        self,
        conn: Connection,
        ref: SubjectRef,
        which: list[str] | None,
        source: str,
        *,
        gpc: bool,
        actor: str,
    ) -> ConsentResult:
        purposes = self.registry.all(conn)
        kind = _source(source)
        resolution = self.subjects.resolve(conn, ref, actor=actor)
        subject_id = resolution.subject.subject_id
        sql.lock_subject(conn, subject_id)
        _erasure(conn, subject_id)
        prior = self.cache.fresh(conn, subject_id, remember=False)
        if which is None:
            keys = sorted(
                key
                for key, purpose in purposes.items()
                if purpose.needs_consent or key in prior.purposes
            )
        else:
            keys = [_known(purposes, key) for key in dict.fromkeys(which)]
        intents = {key: Intent(key, State.WITHDRAWN, kind) for key in keys}
        if gpc:
            intents.update({i.purpose: i for i in signals.gpc_intents(purposes)})
            sql.set_subject_attributes(conn, subject_id, {"gpc_opt_out": True})
        now = clock.now()
        appended = ledger.append(
            conn,
            subject_id,
            list(intents.values()),
            purposes,
            now=now,
            actor=actor,
            notice=None,
            jurisdiction=resolution.subject.effective_jurisdiction.value,
            explicit=False,
            evidence=None,
            sealer=self.subjects.keys.sealer(conn, subject_id),
        )
        if not intents:
            sql.lock_subject_version(conn, subject_id, 1)
        self._opted_out(conn, subject_id, appended, purposes, actor)
        self.registry.mark_used(conn, sorted(intents), purposes)
        return self._finish(conn, prior, appended, gpc, now, purposes, actor)

    def _opted_out(
        self,
        conn: Connection,
        subject_id: str,
        appended: list[LedgerEntry],
        purposes: dict[str, Purpose],
        actor: str,
    ) -> None:
        """The purposes this call denied or withdrew, in its transaction: their pending
        deliveries go, and the systems that received data for them are told, to pass it on
        when one was a sale or share."""
        denied = sorted({e.purpose for e in appended if e.state is not State.GRANTED})
        if not denied:
            return
        self.downstream.cancel_pending(conn, subject_id, denied, actor=actor)
        self.downstream.notify(
            conn,
            subject_id,
            NoticeKind.CONSENT_WITHDRAWN,
            request_id=None,
            purposes=denied,
            actor=actor,
            forward=policy.withdrawal_forwarded(denied, purposes),
        )

    def _finish(
        self,
        conn: Connection,
        prior: SubjectConsent,
        appended: list[LedgerEntry],
        gpc_honored: bool,
        now: datetime,
        purposes: dict[str, Purpose],
        actor: str,
    ) -> ConsentResult:
        state = self.appended(conn, prior, appended, purposes, now, actor)
        token = self._token(state, purposes, now)
        return ConsentResult(state, gpc_honored, token)

    def appended(
        self,
        conn: Connection,
        prior: SubjectConsent,
        appended: list[LedgerEntry],
        purposes: Mapping[str, Purpose],
        now: datetime,
        actor: str,
    ) -> SubjectConsent:
        """What follows every ledger write, in its transaction: the state after `appended`,
        its compliance status kept, its changes queued to the systems that ask for them."""
        # `prior` was read under the subject's row lock, so it and what was appended are the
        # whole state: no need to read the ledger back.
        attributes = sql.subject_attributes(conn, prior.subject_id)
        state = ledger.fold(prior.subject_id, appended, attributes, base=prior)
        compliance.store(conn, state, purposes, now)
        # Queued under the subject's row lock, in the ledger write's transaction: the
        # notices of one subject are numbered in ledger order.
        self.downstream.consent_changed(conn, state, appended, purposes, actor=actor)
        return state


def _intents(
    write: ConsentWrite, purposes: Mapping[str, Purpose], source: Source
) -> tuple[dict[str, Intent], signals.TCFSignal | None]:
    """What the call asks for per purpose (an explicit entry wins over the TC string, GPC
    over both), and the decoded TC string if one came."""
    explicit = [
        Intent(_known(purposes, key), _grant_or_deny(value), source)
        for key, value in write.purposes.items()
    ]
    intents: dict[str, Intent] = {}
    tcf = None
    if write.tcf is not None:
        tcf = signals.tcf_signal(write.tcf, purposes)
        intents.update({i.purpose: i for i in tcf.intents})
    intents.update({i.purpose: i for i in explicit})
    if write.gpc:
        intents.update({i.purpose: i for i in signals.gpc_intents(purposes)})
    # A TC string alone records its vendor consents even when no mapped purpose exists.
    if not intents and not write.gpc and tcf is None:
        raise NothingToRecord("give purposes, a tcf string or a GPC signal")
    return intents, tcf


def _erasure(conn: Connection, subject_id: str) -> str | None:
    """The subject's erasure mark; an erased subject takes no more consent (SubjectErased),
    a tombstone (a person met again after an erasure) may consent anew."""
    row = sql.subject_attributes(conn, subject_id)
    erasure = None if row is None else row.erasure
    if erasure == "erased":
        raise SubjectErased(f"subject {subject_id} has been erased", subject_id=subject_id)
    return None if erasure is None else str(erasure)


def _known(purposes: Mapping[str, Purpose], key: str) -> str:
    if key not in purposes:
        raise UnknownPurpose(f"no purpose {key!r}", purpose=key)
    return key


def _grant_or_deny(value: str) -> State:
    if value not in {State.GRANTED.value, State.DENIED.value}:
        raise InvalidConsentState(
            "a purpose's state is granted or denied (withdraw with /v1/consents/withdraw)"
        )
    return State(value)


E = TypeVar("E", bound=StrEnum)


def _member(kind: type[E], value: str, name: str, error: type[InvalidRequest]) -> E:
    """`value` as a member of `kind`; otherwise `error` naming the allowed values (not the
    value sent, which is echoed nowhere)."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise error(f"{name} is one of {allowed}") from None


# Only the expiry sweep writes expiry entries: a caller cannot date one.
_CALLER_SOURCES = tuple(member.value for member in Source if member is not Source.EXPIRY)


def _source(value: str) -> Source:
    if value not in _CALLER_SOURCES:
        raise InvalidSource(f"source is one of {', '.join(_CALLER_SOURCES)}")
    return Source(value)


def _jurisdiction(value: str | None) -> Jurisdiction | None:
    if value is None:
        return None
    return _member(Jurisdiction, value, "jurisdiction", InvalidJurisdiction)


def _age_band(value: str | None) -> AgeBand | None:
    return None if value is None else _member(AgeBand, value, "age_band", InvalidAgeBand)
