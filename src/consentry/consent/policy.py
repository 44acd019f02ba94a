"""The one place a consent decision is made: a pure function of a subject's state and a purpose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from consentry.consent.models import (
    AgeBand,
    Decision,
    Purpose,
    Reason,
    State,
    SubjectConsent,
    UsCaModel,
)

T = TypeVar("T")
US_CA = "US-CA"
# CCPA §1798.120(c): selling or sharing the data of a consumer under 16 needs opt-in.
CCPA_OPT_IN_AGE = 16
# Ages of digital consent fixed by a jurisdiction's own law (UK GDPR Art. 8, DPA 2018 s. 9);
# every other jurisdiction uses CONSENTRY_DIGITAL_CONSENT_AGE. "EU" names no member state,
# so the Art. 8(1) ages of member states cannot be told apart (docs/decisions.md).
DIGITAL_CONSENT_AGES = {"UK": 13}


def decide(purpose: Purpose, subject: SubjectConsent | None, now: datetime) -> Decision:  # noqa: PLR0911 - a ladder of legal rules, first match wins
    """May `purpose` process this subject's data at `now`? `subject` None: nobody known.

    Order: erasure, restriction (Art. 18), objection (Art. 21) end processing whatever the
    legal basis; a purpose not based on consent is then allowed; a consent purpose needs a
    grant that has not expired, except the CCPA opt-out model for a US-CA adult never asked.
    """
    state = subject or SubjectConsent(subject_id="")
    basis = purpose.legal_basis

    def decision(allowed: bool, reason: Reason) -> Decision:
        return Decision(allowed, reason, basis, state.version)

    if state.erased:
        return decision(False, Reason.SUBJECT_ERASED)
    if state.restricted or purpose.key in state.restricted_purposes:
        return decision(False, Reason.RESTRICTED)
    if purpose.key in state.objected:
        return decision(False, Reason.OBJECTED)
    if not purpose.needs_consent:
        return decision(True, Reason.NOT_REQUIRED)
    current = state.purposes.get(purpose.key)
    if current is None:
        if opt_out_model_applies(purpose, state):
            return decision(True, Reason.NOT_OPTED_OUT)
        return decision(False, Reason.NEVER_ASKED)
    if current.state is not State.GRANTED:
        return decision(False, Reason.DENIED)
    if current.expires_at is not None and current.expires_at <= now:
        return decision(False, Reason.EXPIRED)
    return decision(True, Reason.GRANTED)


def special_category_purpose(purpose: Purpose) -> bool:
    """Whether `purpose` may ever process special-category data (Art. 9/10): it names an
    Art. 9(2) condition."""
    return purpose.special_category_condition is not None


def special_category_allowed(purpose: Purpose, subject: SubjectConsent | None) -> bool:
    """May `purpose` process this subject's special-category data (Art. 9/10)? Only a purpose
    with a condition; for condition `a` (explicit consent) only when the subject's current
    grant of it was explicit. Decides what ingest keeps and what reads show."""
    if not special_category_purpose(purpose):
        return False
    if purpose.special_category_condition != "a":
        return True
    current = (subject or SubjectConsent(subject_id="")).purposes.get(purpose.key)
    return current is not None and current.explicit


@dataclass(frozen=True, slots=True)
class Remembered(Generic[T]):
    """A decision kept for reuse with what it was made from: it holds while the subject's
    state, the purposes and the context it was decided in (a schema, a system) are the very
    objects it was made from (a change to any of them makes new ones), and until the first
    grant it relied on expires."""

    value: T
    state: SubjectConsent
    purposes: dict[str, Purpose]
    context: object
    until: datetime | None

    def holds(
        self, state: SubjectConsent, purposes: dict[str, Purpose], context: object, now: datetime
    ) -> bool:
        return (
            self.state is state
            and self.purposes is purposes
            and self.context is context
            and (self.until is None or now < self.until)
        )


def remember(
    value: T, state: SubjectConsent, purposes: dict[str, Purpose], context: object, now: datetime
) -> Remembered[T]:
    """`value`, decided now from `state`, `purposes` and `context`, kept while it holds."""
    ends = [p.expires_at for p in state.purposes.values() if p.expires_at and p.expires_at > now]
    return Remembered(value, state, purposes, context, min(ends) if ends else None)


def opt_out_model_applies(purpose: Purpose, state: SubjectConsent) -> bool:
    """CCPA lets a US-CA adult's data be used until they opt out; a child's sale/share never."""
    if state.jurisdiction != US_CA or purpose.us_ca_model is not UsCaModel.OPT_OUT:
        return False
    return not (purpose.sale_or_share and state.age_band.lowest_age < CCPA_OPT_IN_AGE)


def sale_opted_out(
    purposes: Iterable[Purpose], subject: SubjectConsent | None, now: datetime
) -> bool:
    """Whether this subject's data may not be sold or shared (CCPA §1798.120): a sale_or_share
    purpose denied or withdrawn (GPC included, also for such a purpose created after the
    signal), or objected to; or a US-CA subject under 16 without a grant of every one."""
    state = subject or SubjectConsent(subject_id="")
    minor = state.jurisdiction == US_CA and state.age_band.lowest_age < CCPA_OPT_IN_AGE
    for purpose in purposes:
        if not purpose.sale_or_share:
            continue
        current = state.purposes.get(purpose.key)
        if purpose.key in state.objected:
            return True
        if current is None and state.gpc:
            return True
        if current is not None and current.state is not State.GRANTED:
            return True
        if minor and decide(purpose, state, now).reason is not Reason.GRANTED:
            return True
    return False


def digital_consent_age(jurisdiction: str, default: int) -> int:
    """The age of digital consent (Art. 8) in `jurisdiction`; `default` where its law sets
    none of its own (CONSENTRY_DIGITAL_CONSENT_AGE)."""
    return DIGITAL_CONSENT_AGES.get(jurisdiction, default)


def parental_authorization_needed(band: AgeBand, jurisdiction: str, default_age: int) -> bool:
    """Whether a grant for a subject in `band` needs a parent's authorisation (Art. 8(1)): the
    band's lowest age is below the age of digital consent of the subject's jurisdiction
    (`unknown` counts as adult)."""
    return band.lowest_age < digital_consent_age(jurisdiction, default_age)
