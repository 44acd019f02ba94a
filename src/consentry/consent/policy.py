"""The one place a consent decision is made: a pure function of a subject's state and a purpose."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from consentry.consent.models import (
    AgeBand,
    AutomatedDecisionBasis,
    ComplianceStatus,
    Decision,
    LegalBasis,
    Notice,
    Purpose,
    PurposeState,
    Reason,
    Remembered,
    Source,
    State,
    SubjectConsent,
    UsCaModel,
)
from consentry.errors import (
    ExplicitConsentRequired,
    NoticeMismatch,
    NoticeRequired,
    ParentalAuthorizationRequired,
)
from consentry.subjects.models import DEFAULT_JURISDICTION, IdentityType, Jurisdiction, SubjectRef

T = TypeVar("T")
US_CA = "US-CA"
# CCPA §1798.120(c): selling or sharing the data of a consumer under 16 needs opt-in.
CCPA_OPT_IN_AGE = 16
# Ages of digital consent fixed by a jurisdiction's own law (UK GDPR Art. 8, DPA 2018 s. 9);
# every other jurisdiction uses CONSENTRY_DIGITAL_CONSENT_AGE. "EU" names no member state,
# so the Art. 8(1) ages of member states cannot be told apart (docs/decisions.md).
DIGITAL_CONSENT_AGES = {"UK": 13}
# ePrivacy Art. 5(3) covers reading and storing on the terminal: cookie and device ids.
TERMINAL_IDENTITIES = frozenset({IdentityType.COOKIE_ID, IdentityType.DEVICE_ID})
EPRIVACY_AREAS = frozenset({Jurisdiction.EU, Jurisdiction.UK})
# Sources from which a sale/share grant never overrides an earlier GPC opt-out (API.md).
NO_GPC_OVERRIDE = frozenset({Source.TCF, Source.IMPORT})
# The states in which the person said no: a denial or a withdrawal (an expiry is not one).
OPTED_OUT_STATES = frozenset({State.DENIED, State.WITHDRAWN})
# Reasons a consent-based purpose may process data for, and those that say the subject said no.
CONSENT_ALLOWS = frozenset({Reason.GRANTED, Reason.NOT_OPTED_OUT})
OPTED_OUT_REASONS = frozenset({Reason.DENIED, Reason.OBJECTED})


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

    refusal = subject_refusal(state)
    if refusal is not None:
        return decision(False, refusal)
    if purpose.key in state.restricted_purposes:
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
    if current.state is State.EXPIRED or grant_lapsed(current, now):
        return decision(False, Reason.EXPIRED)
    if current.state is not State.GRANTED:
        return decision(False, Reason.DENIED)
    return decision(True, Reason.GRANTED)


def grant_lapsed(current: PurposeState, now: datetime) -> bool:
    """Whether `current` is a grant whose expires_at has come: from then it no longer allows,
    whether or not the expiry sweep has written its `expired` entry yet."""
    return (
        current.state is State.GRANTED
        and current.expires_at is not None
        and current.expires_at <= now
    )


def lapsed_grants(
    state: SubjectConsent, purposes: Mapping[str, Purpose], now: datetime
) -> list[tuple[str, datetime]]:
    """(purpose, expires_at) of each consent purpose whose latest entry is a grant that has
    lapsed by `now`, earliest first: what the expiry sweep records as `expired` (dated at its
    expires_at). A grant of a purpose not based on consent lapses unrecorded: its processing
    never rested on it."""
    lapsed = [
        (key, current.expires_at)
        for key, current in state.purposes.items()
        if current.expires_at is not None
        and grant_lapsed(current, now)
        and key in purposes
        and purposes[key].needs_consent
    ]
    return sorted(lapsed, key=lambda item: (item[1], item[0]))


def subject_refusal(state: SubjectConsent) -> Reason | None:
    """What ends every use of the subject's data whatever the purpose: an erasure, then a
    restriction of all processing (Art. 18). Its value is also the code refusing an event."""
    if state.erased:
        return Reason.SUBJECT_ERASED
    if state.restricted:
        return Reason.RESTRICTED
    return None


def token_stale(token_version: int, state: SubjectConsent) -> bool:
    """Whether a consent token issued at ledger version `token_version` is behind the
    subject's state: its events are refused (stale_consent_token)."""
    return token_version < state.version


def delivery_held(state: SubjectConsent, event_purposes: Iterable[str]) -> bool:
    """Whether a delivery not allowed now waits instead of being dropped: the subject
    restricted all processing, or one of the event's purposes pending an objection (Art. 18);
    an erased subject's deliveries are never held."""
    if state.erased:
        return False
    if state.restricted:
        return True
    return not state.restricted_purposes.isdisjoint(event_purposes)


def purge_held(state: SubjectConsent, purpose: str) -> bool:
    """Whether the purge of a lapsed grant's events waits: the subject restricted all
    processing, or the purpose is held while an objection is decided (Art. 18: the data may
    only be stored), as the retention sweep holds them; an erased subject's never waits."""
    return delivery_held(state, [purpose])


def terminal_only(ref: SubjectRef) -> bool:
    """Whether an event names its subject only by what is read from the terminal (cookie and
    device ids): what ePrivacy Art. 5(3) covers."""
    return bool(ref.identities) and all(i.type in TERMINAL_IDENTITIES for i in ref.identities)


def eprivacy_applies(state: SubjectConsent) -> bool:
    """Whether the subject's jurisdiction (unknown: EU) is one where ePrivacy Art. 5(3) holds."""
    jurisdiction = Jurisdiction(state.jurisdiction) if state.jurisdiction else DEFAULT_JURISDICTION
    return jurisdiction in EPRIVACY_AREAS


def event_purposes(
    keys: Iterable[str],
    purposes: Mapping[str, Purpose],
    state: SubjectConsent,
    terminal: bool,
    now: datetime,
) -> tuple[list[str], str | None]:
    """(the purposes, of an event type's `keys` that exist, an event may be stored for; or
    the code refusing it). An event known only by terminal ids in an ePrivacy area serves
    only consent or strictly necessary purposes (Art. 5(3)): none left is
    eprivacy_consent_required. Then `decide` per purpose; none allowed is expired_consent
    when a grant expired, else no_consent."""
    candidates = [purposes[key] for key in keys if key in purposes]
    if terminal and eprivacy_applies(state):
        candidates = [p for p in candidates if p.needs_consent or p.strictly_necessary]
        if not candidates:
            return [], "eprivacy_consent_required"
    decisions = {p.key: decide(p, state, now) for p in candidates}
    allowed = [key for key, d in decisions.items() if d.allowed]
    if allowed:
        return allowed, None
    expired = any(d.reason is Reason.EXPIRED for d in decisions.values())
    return [], "expired_consent" if expired else "no_consent"


# GDPR Art. 9 and 10 data, as fideslang names it (API.md, Event schemas and events).
SPECIAL_CATEGORY_PREFIXES = (
    "user.biometric",
    "user.authorization.biometric",
    "user.health_and_medical",
    "user.genetic",
    "user.demographic.race_ethnicity",
    "user.demographic.religious_belief",
    "user.demographic.political_opinion",
    "user.demographic.sexual_orientation",
    "user.criminal_history",
)
# CCPA sensitive personal information (§1798.140(ae)), as fideslang names it: what a
# `limit` request (§1798.121) keeps to the purposes regs §7027(m) allows. Union membership
# and neural data have no fideslang category (docs/decisions.md).
SENSITIVE_CATEGORY_PREFIXES = (
    "user.government_id",  # (ae)(1)(A) SSN, licence, passport; (D) immigration status
    "user.authorization",  # (ae)(1)(B) log-in credentials, passwords
    "user.financial",  # (ae)(1)(B) financial account, debit or credit card number
    "user.location.precise",  # (ae)(1)(C)
    "user.demographic.race_ethnicity",  # (ae)(1)(D)
    "user.demographic.religious_belief",  # (ae)(1)(D)
    "user.content.private",  # (ae)(1)(E) contents of mail, e-mail, text messages
    "user.genetic",  # (ae)(1)(F)
    "user.biometric",  # (ae)(2)(A)
    "user.health_and_medical",  # (ae)(2)(B), genetic data included
    "user.demographic.sexual_orientation",  # (ae)(2)(C) sex life or sexual orientation
)
# Regs §7027(m)(1), (6): the goods or services asked for; §1798.145(a)(1): a legal
# obligation; (m)(4): physical safety. (m)(2), (3), (7) (security, fraud, service quality)
# are what a `strictly_necessary` purpose does.
SENSITIVE_USE_BASES = frozenset(
    {LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION, LegalBasis.VITAL_INTERESTS}
)


def _under(category: str, prefixes: tuple[str, ...]) -> bool:
    return any(category == p or category.startswith(p + ".") for p in prefixes)


def is_special_category(category: str) -> bool:
    """Whether a fideslang data category is special-category data (Art. 9/10)."""
    return _under(category, SPECIAL_CATEGORY_PREFIXES)


def is_sensitive_category(category: str) -> bool:
    """Whether a fideslang data category is CCPA sensitive personal information."""
    return _under(category, SENSITIVE_CATEGORY_PREFIXES)


def sensitive_use_permitted(purpose: Purpose) -> bool:
    """Whether `purpose` is a use regs §7027(m) allows after a request to limit: based on
    contract, a legal obligation or vital interests, or strictly necessary; never one that
    sells, shares or markets (cross-context advertising and profiling are not (m) uses)."""
    if purpose.sale_or_share or purpose.direct_marketing:
        return False
    return purpose.strictly_necessary or purpose.legal_basis in SENSITIVE_USE_BASES


def sensitive_limit_holds(subject: SubjectConsent | None) -> bool:
    """Whether the subject asked to limit the use of their sensitive personal information
    (CCPA §1798.121): what a decision on such data depends on beside the purpose."""
    return subject is not None and subject.sensitive_limited


def sensitive_allowed(purpose: Purpose, subject: SubjectConsent | None) -> bool:
    """May `purpose` process this subject's sensitive personal information? Always, unless
    the subject asked to limit its use (CCPA §1798.121); then only a §7027(m) use. Decides
    what ingest keeps, what reads show and what deliveries carry."""
    return not sensitive_limit_holds(subject) or sensitive_use_permitted(purpose)


def sensitive_purposes(
    keys: Iterable[str], purposes: Mapping[str, Purpose], subject: SubjectConsent | None
) -> list[str] | None:
    """Of the purposes `keys` (in their order), those that may process this subject's
    sensitive personal information; None when every one may (no limit holds), so a caller
    can tell a field kept for all of them from one narrowed."""
    if not sensitive_limit_holds(subject):
        return None
    return [key for key in keys if sensitive_allowed(purposes[key], subject)]


# Art. 6(1)(b)-(d): what the person's contract, the law or their vital interests rest on is
# done with the person's own details (an invoice, a tax record, a call to an ambulance).
RAW_VALUE_BASES = frozenset(
    {LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION, LegalBasis.VITAL_INTERESTS}
)


def needs_raw_value(purpose: Purpose) -> bool:
    """Whether `purpose` needs a person's details as they are, not a pseudonym or a token
    (Art. 5(1)(c), 25(1)): a purpose resting on contract, a legal obligation or vital
    interests, a strictly necessary service, or direct marketing (it writes to the person).
    Analytics, personalisation, advertising and sharing work on pseudonyms: a personal field
    kept in clear for them only is more than they need."""
    return (
        purpose.legal_basis in RAW_VALUE_BASES
        or purpose.strictly_necessary
        or purpose.direct_marketing
    )


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


def field_purposes(
    allowed: Iterable[str],
    own: frozenset[str] | None,
    *,
    special: bool,
    sensitive: bool,
    purposes: Mapping[str, Purpose],
    state: SubjectConsent,
) -> tuple[set[str], bool]:
    """(the purposes one field of an event may serve, of the event's `allowed` ones; whether
    that is narrowed from the event's, so it is shown only to them). A field with its own
    purposes serves those the subject allows; a special-category field (Art. 9/10) only
    purposes with a condition, `a` needing an explicit grant; sensitive personal information,
    once the subject limited its use (CCPA §1798.121), only §7027(m) uses."""
    serving = set(allowed) if own is None else set(allowed) & own
    if special:
        serving = {p for p in serving if special_category_allowed(purposes[p], state)}
    limited = sensitive_purposes(serving, purposes, state) if sensitive else None
    if limited is not None:
        serving = set(limited)
    return serving, own is not None or special or limited is not None


# Art. 22(4): a significant automated decision may rest on special-category data only under
# Art. 9(2)(a) (explicit consent) or (g) (substantial public interest, under law).
DECISION_SPECIAL_CONDITIONS = frozenset({"a", "g"})


def inference_refusal(  # noqa: PLR0911 - a ladder of legal rules, first match wins
    purpose: Purpose,
    purposes: Mapping[str, Purpose],
    state: SubjectConsent,
    *,
    terminal: bool,
    significant_decision: bool,
    special_inputs: bool,
    now: datetime,
) -> str | None:
    """The code refusing a model inference for `purpose` about this subject, or None.

    First as an event of that one purpose would be (erased, restricted, ePrivacy, no or
    expired consent); then special-category inputs need a purpose that may process this
    subject's such data (Art. 9); then a decision by automated means alone with legal or
    similarly significant effects (`significant_decision`) needs the purpose's
    automated_decision_basis (Art. 22(2)), an explicit grant when that basis is explicit
    consent (Art. 22(2)(c)), and special-category inputs only under Art. 9(2)(a) or (g)
    (Art. 22(4))."""
    refusal = subject_refusal(state)
    if refusal is not None:
        return refusal.value
    _allowed, code = event_purposes([purpose.key], purposes, state, terminal, now)
    if code is not None:
        return code
    if special_inputs and not special_category_allowed(purpose, state):
        return "special_category_not_allowed"
    if not significant_decision:
        return None
    basis = purpose.automated_decision_basis
    if basis is None:
        return "automated_decision_basis_required"
    if basis is AutomatedDecisionBasis.EXPLICIT_CONSENT:
        current = state.purposes.get(purpose.key)
        if current is None or current.state is not State.GRANTED or not current.explicit:
            return "explicit_grant_required"
    if special_inputs and purpose.special_category_condition not in DECISION_SPECIAL_CONDITIONS:
        return "special_category_decision_refused"
    return None


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
        # A lapsed grant is not an opt-out (the person never said no); for a minor it is
        # no grant either (below).
        if current is not None and current.state in OPTED_OUT_STATES:
            return True
        if minor and decide(purpose, state, now).reason is not Reason.GRANTED:
            return True
    return False


def withdrawal_forwarded(denied: Iterable[str], purposes: Mapping[str, Purpose]) -> bool:
    """A withdrawal's notice is to be passed on (CCPA §1798.135: to those the data was sold or
    shared with) when one of the purposes withdrawn is a sale or share."""
    return any(purposes[p].sale_or_share for p in denied if p in purposes)


def expiry_forwarded(expired: Iterable[str], purposes: Mapping[str, Purpose]) -> bool:
    """An expiry's notice is passed on as a withdrawal's is: once a sale or share grant has
    lapsed, those the data was sold or shared with may no longer use it either."""
    return withdrawal_forwarded(expired, purposes)


def gpc_refuses_grant(
    purpose: Purpose, source: Source, *, gpc_now: bool, gpc_before: bool, opt_in_confirmed: bool
) -> bool:
    """Whether a grant of `purpose` is refused by a GPC opt-out (API.md, Consent): only a
    sale_or_share purpose, with a GPC signal in the same call or on record. A signal in the
    same call always wins; one on record yields only to a grant whose evidence confirms the
    opt-in (opt_in_confirmed) and whose source is neither a TC string nor an import."""
    if not purpose.sale_or_share or not (gpc_now or gpc_before):
        return False
    return gpc_now or not opt_in_confirmed or source in NO_GPC_OVERRIDE


def check_grant(
    purpose: Purpose,
    notice: Notice | None,
    *,
    explicit: bool,
    evidence: Mapping[str, Any],
    band: AgeBand,
    jurisdiction: str,
    default_age: int,
) -> None:
    """A grant of a consent purpose stands only on the notice the customer saw, covering it
    (NoticeRequired, NoticeMismatch); explicit, with evidence, for special-category data on
    condition `a` (ExplicitConsentRequired, Art. 9(2)(a)); with a parent's authorisation
    below the age of digital consent (ParentalAuthorizationRequired, Art. 8(1))."""
    if notice is None:
        raise NoticeRequired(
            f"granting {purpose.key!r} needs the notice the customer saw", purpose=purpose.key
        )
    if purpose.key not in notice.purposes:
        raise NoticeMismatch(
            f"notice {notice.notice_id} version {notice.version} does not cover {purpose.key!r}",
            purpose=purpose.key,
        )
    if purpose.special_category_condition == "a" and not (explicit and evidence):
        raise ExplicitConsentRequired(
            f"{purpose.key!r} processes special-category data on explicit consent "
            "(Art. 9(2)(a)): send explicit: true with evidence",
            purpose=purpose.key,
        )
    if parental_authorization_needed(band, jurisdiction, default_age) and not evidence.get(
        "parental_authorization"
    ):
        age = digital_consent_age(jurisdiction, default_age)
        raise ParentalAuthorizationRequired(
            f"below the age of {age} ({jurisdiction}) a grant needs "
            "evidence.parental_authorization",
            purpose=purpose.key,
        )


def digital_consent_age(jurisdiction: str, default: int) -> int:
    """The age of digital consent (Art. 8) in `jurisdiction`; `default` where its law sets
    none of its own (CONSENTRY_DIGITAL_CONSENT_AGE)."""
    return DIGITAL_CONSENT_AGES.get(jurisdiction, default)


def parental_authorization_needed(band: AgeBand, jurisdiction: str, default_age: int) -> bool:
    """Whether a grant for a subject in `band` needs a parent's authorisation (Art. 8(1)): the
    band's lowest age is below the age of digital consent of the subject's jurisdiction
    (`unknown` counts as adult)."""
    return band.lowest_age < digital_consent_age(jurisdiction, default_age)


def tcf_vendor_consented(vendor_id: int, subject: SubjectConsent | None) -> bool:
    """May a system that is GVL vendor `vendor_id` get this subject's data? Only while the
    vendor has consent (VendorConsents) in the subject's latest TC string: a subject with no
    TC string on record gives TCF vendors nothing."""
    if subject is None or subject.tcf_vendors is None:
        return False
    return vendor_id in subject.tcf_vendors


def compliance_reasons(
    purposes: Mapping[str, Purpose], subject: SubjectConsent | None, now: datetime
) -> dict[str, Reason]:
    """The check's reason for each consent-based purpose: what a compliance status is over."""
    return {
        key: decide(purpose, subject, now).reason
        for key, purpose in sorted(purposes.items())
        if purpose.needs_consent
    }


def compliance_status(reasons: Iterable[Reason]) -> ComplianceStatus:  # noqa: PLR0911 - a ladder, first match wins
    """A subject's status over the check reasons of the consent-based purposes (API.md,
    Consent). ERASED and RESTRICTED (every purpose restricted) first; then by what is allowed:
    all granted FULLY_OPTED_IN, all allowed with some only not opted out NOT_OPTED_OUT, some
    PARTIAL_OPT_IN; none allowed: FULLY_OPTED_OUT once any was denied, withdrawn or objected
    to, else EXPIRED once a grant lapsed, else RESTRICTED when some purpose is held, else
    NOT_ASKED (also when there is no consent-based purpose at all)."""
    found = [r for r in reasons if r is not Reason.NOT_REQUIRED]
    if Reason.SUBJECT_ERASED in found:
        return ComplianceStatus.ERASED
    if not found:
        return ComplianceStatus.NOT_ASKED
    if all(r is Reason.RESTRICTED for r in found):
        return ComplianceStatus.RESTRICTED
    allowed = [r for r in found if r in CONSENT_ALLOWS]
    if len(allowed) == len(found):
        if all(r is Reason.GRANTED for r in found):
            return ComplianceStatus.FULLY_OPTED_IN
        return ComplianceStatus.NOT_OPTED_OUT
    if allowed:
        return ComplianceStatus.PARTIAL_OPT_IN
    if any(r in OPTED_OUT_REASONS for r in found):
        return ComplianceStatus.FULLY_OPTED_OUT
    if Reason.EXPIRED in found:
        return ComplianceStatus.EXPIRED
    if Reason.RESTRICTED in found:
        return ComplianceStatus.RESTRICTED
    return ComplianceStatus.NOT_ASKED


def next_expiry(subject: SubjectConsent | None, now: datetime) -> datetime | None:
    """The earliest moment after `now` at which one of the subject's grants lapses: until
    then, every decision over its state stays as it is now."""
    if subject is None:
        return None
    ends = [p.expires_at for p in subject.purposes.values() if p.expires_at and p.expires_at > now]
    return min(ends, default=None)


def may_ask_again_at(
    purposes: Iterable[Purpose], subject: SubjectConsent | None
) -> datetime | None:
    """For a US-CA subject who opted out of a sale or share: 12 months after the latest such
    opt-out, the earliest they may be asked to opt back in (§1798.135(c)(4)); else None.
    The latest opt-out counts, so a repeated opt-out restarts the wait; a lapsed grant (its
    `expired` entry) is no opt-out."""
    if subject is None or subject.jurisdiction != US_CA:
        return None
    outs = [
        current.updated_at
        for purpose in purposes
        if purpose.sale_or_share
        and (current := subject.purposes.get(purpose.key)) is not None
        and current.state in OPTED_OUT_STATES
    ]
    if not outs:
        return None
    latest = max(outs)
    try:
        return latest.replace(year=latest.year + 1)
    except ValueError:  # 29 February: the wait ends on 1 March, never before 12 months
        return latest.replace(year=latest.year + 1, month=3, day=1)


def update_reaches(state: str, *, gate_refuses: bool, holds_data: bool) -> bool:
    """Whether a purpose's new `state` goes to a system in a `consent_updated` (API.md, Consent
    propagation): through an open gate always; through a refusing one (transfer, DPA, sale or
    share) only a denial, withdrawal or expiry, and only to a system that already holds the
    subject's data, which must stop using it whatever the gate says of new data."""
    if not gate_refuses:
        return True
    return holds_data and state != State.GRANTED.value
