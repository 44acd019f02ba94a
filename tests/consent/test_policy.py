"""Property tests (hypothesis) of consent/policy.py, pure functions over in-memory state: the
decision ladder, erased and restricted, ePrivacy, Art. 9, GPC, children, expiry, grant checks.

Each test states the rule again in its own words (the oracle) and holds the function to it on
any purpose and subject state hypothesis makes up.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentry.consent import compliance, policy, signals
from consentry.consent.models import (
    AgeBand,
    AutomatedDecisionBasis,
    ComplianceStatus,
    LegalBasis,
    Notice,
    Purpose,
    PurposeState,
    Reason,
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
from consentry.subjects.models import Identity, IdentityType, SubjectRef

NOW = datetime(2026, 6, 1, tzinfo=UTC)
KEYS = ("p", "q", "r")
JURISDICTIONS = [None, "EU", "UK", "US-CA", "US", "OTHER"]
ALLOWING = {Reason.GRANTED, Reason.NOT_REQUIRED, Reason.NOT_OPTED_OUT}
MANY = settings(max_examples=300, deadline=None)


def purpose_named(key: str) -> st.SearchStrategy[Purpose]:
    return st.builds(
        Purpose,
        key=st.just(key),
        name=st.just(key.upper()),
        legal_basis=st.sampled_from(list(LegalBasis)),
        retention_days=st.just(30),
        sale_or_share=st.booleans(),
        direct_marketing=st.booleans(),
        strictly_necessary=st.booleans(),
        special_category_condition=st.sampled_from([None, "a", "b", "h"]),
        us_ca_model=st.sampled_from(list(UsCaModel)),
    )


PURPOSE = purpose_named("p")
PURPOSES = st.tuples(*(purpose_named(k) for k in KEYS)).map(lambda ps: {p.key: p for p in ps})
PURPOSE_STATE = st.builds(
    PurposeState,
    state=st.sampled_from(list(State)),
    updated_at=st.just(NOW - timedelta(days=10)),
    expires_at=st.one_of(
        st.none(),
        st.integers(-5, 5).map(lambda d: NOW + timedelta(days=d, seconds=1) if d else NOW),
    ),
    source=st.sampled_from(list(Source)),
    notice_sha256=st.none(),
    explicit=st.booleans(),
)
PURPOSE_SUBSET = st.frozensets(st.sampled_from((*KEYS, "other")))
SUBJECT = st.builds(
    SubjectConsent,
    subject_id=st.just("sub_p"),
    version=st.integers(0, 1000),
    purposes=st.dictionaries(st.sampled_from(KEYS), PURPOSE_STATE, max_size=3),
    jurisdiction=st.sampled_from(JURISDICTIONS),
    age_band=st.sampled_from(list(AgeBand)),
    gpc=st.booleans(),
    erased=st.booleans(),
    restricted=st.booleans(),
    objected=PURPOSE_SUBSET,
    restricted_purposes=PURPOSE_SUBSET,
    sensitive_limited=st.booleans(),
)
IDENTITIES = st.lists(
    st.sampled_from(list(IdentityType)).map(lambda t: Identity(t, f"{t.value}-1")), max_size=3
)


def expected_reason(purpose: Purpose, state: SubjectConsent) -> Reason:  # noqa: PLR0911 - the ladder restated
    """The ladder of API.md: erased > restricted > objected > not_required > (consent:
    never_asked or not_opted_out, denied, expired, granted)."""
    current = state.purposes.get(purpose.key)
    opt_out = (
        state.jurisdiction == "US-CA"
        and purpose.us_ca_model is UsCaModel.OPT_OUT
        and not (purpose.sale_or_share and state.age_band.lowest_age < 16)
    )
    if state.erased:
        return Reason.SUBJECT_ERASED
    if state.restricted or purpose.key in state.restricted_purposes:
        return Reason.RESTRICTED
    if purpose.key in state.objected:
        return Reason.OBJECTED
    if purpose.legal_basis is not LegalBasis.CONSENT:
        return Reason.NOT_REQUIRED
    if current is None:
        return Reason.NOT_OPTED_OUT if opt_out else Reason.NEVER_ASKED
    if current.state is State.EXPIRED:
        return Reason.EXPIRED
    if current.state is not State.GRANTED:
        return Reason.DENIED
    if current.expires_at is not None and current.expires_at <= NOW:
        return Reason.EXPIRED
    return Reason.GRANTED


@MANY
@given(purpose=PURPOSE, subject=st.one_of(st.none(), SUBJECT))
def test_decide_applies_its_reasons_in_order(
    purpose: Purpose, subject: SubjectConsent | None
) -> None:
    """policy.decide: the ladder above; allowed exactly for granted, not_required and
    not_opted_out; legal basis and version echoed."""
    decision = policy.decide(purpose, subject, NOW)
    state = subject or SubjectConsent(subject_id="")
    expected = expected_reason(purpose, state)
    assert decision.reason is expected
    assert decision.allowed is (expected in ALLOWING)
    assert decision.legal_basis is purpose.legal_basis
    assert decision.version == state.version


@MANY
@given(purpose=PURPOSE, subject=SUBJECT, token_version=st.integers(0, 1000))
def test_erased_and_restricted_end_every_purpose(
    purpose: Purpose, subject: SubjectConsent, token_version: int
) -> None:
    """An erased subject's data serves nothing (subject_erased), then a restriction of all
    processing (restricted), whatever the purpose or its legal basis; an event under a token
    older than the ledger is stale."""
    refusal = policy.subject_refusal(subject)
    if subject.erased:
        assert refusal is Reason.SUBJECT_ERASED
    elif subject.restricted:
        assert refusal is Reason.RESTRICTED
    else:
        assert refusal is None
    if refusal is not None:
        assert policy.decide(purpose, subject, NOW).reason is refusal
        assert refusal.value in {"subject_erased", "restricted"}
    assert policy.token_stale(token_version, subject) is (token_version < subject.version)


@MANY
@given(subject=SUBJECT, event_purposes=st.lists(st.sampled_from(KEYS), max_size=3))
def test_a_delivery_waits_while_a_restriction_holds(
    subject: SubjectConsent, event_purposes: list[str]
) -> None:
    """Art. 18: a delivery waits while the subject restricted all processing or one of the
    event's purposes; an erased subject's deliveries are dropped, never held."""
    held = policy.delivery_held(subject, event_purposes)
    restricted = subject.restricted or bool(subject.restricted_purposes & set(event_purposes))
    assert held is (not subject.erased and restricted)


@MANY
@given(identities=IDENTITIES)
def test_terminal_only_means_cookie_and_device_ids_alone(identities: list[Identity]) -> None:
    """ePrivacy Art. 5(3) covers what is read from the terminal: an event named only by
    cookie or device ids (at least one)."""
    terminal = {IdentityType.COOKIE_ID, IdentityType.DEVICE_ID}
    expected = bool(identities) and {i.type for i in identities} <= terminal
    assert policy.terminal_only(SubjectRef(identities=tuple(identities))) is expected
    assert policy.terminal_only(SubjectRef(subject_id="sub_p")) is False


@MANY
@given(
    keys=st.lists(st.sampled_from((*KEYS, "gone")), unique=True, max_size=4),
    purposes=PURPOSES,
    subject=SUBJECT,
    terminal=st.booleans(),
)
def test_eprivacy_keeps_terminal_events_to_consent_or_strictly_necessary(
    keys: list[str], purposes: dict[str, Purpose], subject: SubjectConsent, terminal: bool
) -> None:
    """An event known only by terminal ids of a subject in the EU or UK (unknown counts as
    EU) serves only consent or strictly necessary purposes; none such is
    eprivacy_consent_required. Otherwise the event serves the purposes `decide` allows, in
    the event type's order; none is expired_consent when a grant expired, else no_consent."""
    allowed, code = policy.event_purposes(keys, purposes, subject, terminal, NOW)
    candidates = [purposes[k] for k in keys if k in purposes]
    eprivacy = terminal and subject.jurisdiction in {None, "EU", "UK"}
    assert policy.eprivacy_applies(subject) is (subject.jurisdiction in {None, "EU", "UK"})
    if eprivacy:
        candidates = [
            p for p in candidates if p.legal_basis is LegalBasis.CONSENT or p.strictly_necessary
        ]
    reasons = {p.key: expected_reason(p, subject) for p in candidates}
    if eprivacy and not candidates:
        assert (allowed, code) == ([], "eprivacy_consent_required")
        return
    expected = [key for key, reason in reasons.items() if reason in ALLOWING]
    assert allowed == expected
    if expected:
        assert code is None
    elif Reason.EXPIRED in reasons.values():
        assert code == "expired_consent"
    else:
        assert code == "no_consent"


@MANY
@given(purpose=PURPOSE, subject=st.one_of(st.none(), SUBJECT))
def test_special_category_data_needs_a_condition_and_for_a_an_explicit_grant(
    purpose: Purpose, subject: SubjectConsent | None
) -> None:
    """Art. 9(2): only a purpose naming a condition processes special-category data; on
    condition `a` (explicit consent) only while the subject's grant of it is explicit."""
    current = (subject or SubjectConsent(subject_id="")).purposes.get(purpose.key)
    condition = purpose.special_category_condition
    if condition is None:
        expected = False
    elif condition == "a":
        expected = current is not None and current.explicit
    else:
        expected = True
    assert policy.special_category_allowed(purpose, subject) is expected


@MANY
@given(
    purpose=PURPOSE,
    basis=st.sampled_from([None, *AutomatedDecisionBasis]),
    condition=st.sampled_from([None, "a", "g", "h"]),
    subject=SUBJECT,
    terminal=st.booleans(),
    significant=st.booleans(),
    special=st.booleans(),
)
def test_an_inference_is_refused_as_an_event_then_by_art_9_and_22(
    purpose: Purpose,
    basis: AutomatedDecisionBasis | None,
    condition: str | None,
    subject: SubjectConsent,
    terminal: bool,
    significant: bool,
    special: bool,
) -> None:
    """A model inference: the subject's refusal, then the events' rule for its one purpose;
    special-category inputs only for a purpose that may process them (Art. 9); a significant
    automated decision only on the purpose's basis (Art. 22(2)), explicit consent meaning an
    explicit grant, and on special-category data only under Art. 9(2)(a) or (g) (Art. 22(4))."""
    purpose = dataclasses.replace(
        purpose, automated_decision_basis=basis, special_category_condition=condition
    )
    purposes = {purpose.key: purpose}
    code = policy.inference_refusal(
        purpose,
        purposes,
        subject,
        terminal=terminal,
        significant_decision=significant,
        special_inputs=special,
        now=NOW,
    )
    current = subject.purposes.get(purpose.key)
    explicit_grant = current is not None and current.state is State.GRANTED and current.explicit
    event_code = policy.event_purposes([purpose.key], purposes, subject, terminal, NOW)[1]
    if subject.erased:
        expected: str | None = "subject_erased"
    elif subject.restricted:
        expected = "restricted"
    elif event_code is not None:
        expected = event_code
    elif special and (
        condition is None or (condition == "a" and not (current and current.explicit))
    ):
        expected = "special_category_not_allowed"
    elif not significant:
        expected = None
    elif basis is None:
        expected = "automated_decision_basis_required"
    elif basis is AutomatedDecisionBasis.EXPLICIT_CONSENT and not explicit_grant:
        expected = "explicit_grant_required"
    elif special and condition not in {"a", "g"}:
        expected = "special_category_decision_refused"
    else:
        expected = None
    assert code == expected


@MANY
@given(
    allowed=st.sets(st.sampled_from(KEYS)),
    own=st.one_of(st.none(), st.frozensets(st.sampled_from(KEYS))),
    special=st.booleans(),
    sensitive=st.booleans(),
    purposes=PURPOSES,
    subject=SUBJECT,
)
def test_a_field_serves_only_purposes_its_rules_allow(
    allowed: set[str],
    own: frozenset[str] | None,
    special: bool,
    sensitive: bool,
    purposes: dict[str, Purpose],
    subject: SubjectConsent,
) -> None:
    """A field with its own purposes serves those of them the event may serve; a
    special-category field only Art. 9(2) purposes (`a`: an explicit grant); sensitive
    personal information, once the subject limited it (CCPA §1798.121), only §7027(m) uses:
    neither selling, sharing nor marketing, and contract, legal obligation, vital interests
    or strictly necessary. Narrowed (shown to those purposes alone) when any rule applies."""
    serving, narrowed = policy.field_purposes(
        allowed, own, special=special, sensitive=sensitive, purposes=purposes, state=subject
    )
    expected = set(allowed) if own is None else allowed & own
    for key in sorted(expected):
        purpose, held = purposes[key], subject.purposes.get(key)
        condition = purpose.special_category_condition
        art9 = condition is not None and (condition != "a" or (held is not None and held.explicit))
        permitted = not (purpose.sale_or_share or purpose.direct_marketing) and (
            purpose.strictly_necessary
            or purpose.legal_basis
            in {LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION, LegalBasis.VITAL_INTERESTS}
        )
        if (special and not art9) or (sensitive and subject.sensitive_limited and not permitted):
            expected.discard(key)
    assert serving == expected
    assert narrowed is (own is not None or special or (sensitive and subject.sensitive_limited))


@MANY
@given(
    purpose=PURPOSE,
    source=st.sampled_from(list(Source)),
    gpc_now=st.booleans(),
    gpc_before=st.booleans(),
    confirmed=st.booleans(),
)
def test_gpc_refuses_a_sale_or_share_grant_unless_confirmed(
    purpose: Purpose, source: Source, gpc_now: bool, gpc_before: bool, confirmed: bool
) -> None:
    """API.md, Consent: a GPC signal refuses grants of sale_or_share purposes; one in the same
    call always, one on record unless the grant's evidence confirms the opt-in and it came
    neither from a TC string nor an import. Other purposes GPC never touches."""
    refused = policy.gpc_refuses_grant(
        purpose, source, gpc_now=gpc_now, gpc_before=gpc_before, opt_in_confirmed=confirmed
    )
    if not purpose.sale_or_share or not (gpc_now or gpc_before):
        assert refused is False
    elif gpc_now:
        assert refused is True
    else:
        assert refused is (not confirmed or source in {Source.TCF, Source.IMPORT})


@MANY
@given(purposes=PURPOSES, subject=SUBJECT)
def test_gpc_on_record_opts_out_of_sale_even_for_a_purpose_never_asked(
    purposes: dict[str, Purpose], subject: SubjectConsent
) -> None:
    """CCPA §1798.120: a GPC opt-out on record covers a sale_or_share purpose with no entry
    (also one created after the signal); a denial, withdrawal or objection opts out too."""
    opted_out = policy.sale_opted_out(purposes.values(), subject, NOW)
    for purpose in purposes.values():
        if not purpose.sale_or_share:
            continue
        held = subject.purposes.get(purpose.key)
        if (held is None and subject.gpc) or purpose.key in subject.objected:
            assert opted_out
        if held is not None and held.state in {State.DENIED, State.WITHDRAWN}:
            assert opted_out
    if not any(p.sale_or_share for p in purposes.values()):
        assert not opted_out


@MANY
@given(
    purposes=PURPOSES,
    denied=st.lists(st.sampled_from([*KEYS, "gone"]), unique=True, max_size=4),
)
def test_a_withdrawal_is_passed_on_when_it_ends_a_sale_or_share(
    purposes: dict[str, Purpose], denied: list[str]
) -> None:
    """CCPA §1798.135: a withdrawal notice is forwarded when a purpose withdrawn is a sale or
    share; a purpose no longer registered forwards nothing."""
    expected = any(k in purposes and purposes[k].sale_or_share for k in denied)
    assert policy.withdrawal_forwarded(denied, purposes) is expected


@MANY
@given(
    band=st.sampled_from(list(AgeBand)),
    jurisdiction=st.sampled_from(["EU", "UK", "US-CA", "US", "OTHER"]),
    default_age=st.integers(13, 16),
    purpose=PURPOSE,
)
def test_children(band: AgeBand, jurisdiction: str, default_age: int, purpose: Purpose) -> None:
    """Art. 8(1): below the age of digital consent (13 in the UK, the setting elsewhere;
    `unknown` counts as adult) a grant needs a parent. CCPA §1798.120(c): a US-CA subject
    under 16 is never sold or shared under the opt-out model."""
    age = 13 if jurisdiction == "UK" else default_age
    lowest = {"unknown": 18, "under_13": 0, "13_15": 13, "16_17": 16, "adult": 18}[band.value]
    assert policy.digital_consent_age(jurisdiction, default_age) == age
    needed = policy.parental_authorization_needed(band, jurisdiction, default_age)
    assert needed is (lowest < age)
    notice = Notice("privacy", "1", "0" * 64, frozenset({purpose.key}))
    evidence = {"method": "form"}

    def grant(parent: bool) -> None:
        policy.check_grant(
            purpose,
            notice,
            explicit=True,
            evidence=evidence | ({"parental_authorization": "form"} if parent else {}),
            band=band,
            jurisdiction=jurisdiction,
            default_age=default_age,
        )

    grant(parent=True)
    if needed:
        with pytest.raises(ParentalAuthorizationRequired):
            grant(parent=False)
    else:
        grant(parent=False)
    child = SubjectConsent("sub_c", jurisdiction="US-CA", age_band=band)
    opt_out = purpose.us_ca_model is UsCaModel.OPT_OUT
    expected = opt_out and not (purpose.sale_or_share and lowest < 16)
    assert policy.opt_out_model_applies(purpose, child) is expected


@MANY
@given(purpose=PURPOSE, explicit=st.booleans(), with_evidence=st.booleans(), covered=st.booleans())
def test_a_grant_stands_on_the_notice_and_explicit_consent(
    purpose: Purpose, explicit: bool, with_evidence: bool, covered: bool
) -> None:
    """A grant needs the notice the customer saw, covering the purpose, and for condition `a`
    explicit: true with evidence, checked in that order."""
    evidence = {"method": "checkbox"} if with_evidence else {}
    notice = Notice("privacy", "1", "0" * 64, frozenset({purpose.key} if covered else {"x"}))

    def grant(seen: Notice | None) -> None:
        policy.check_grant(
            purpose,
            seen,
            explicit=explicit,
            evidence=evidence,
            band=AgeBand.ADULT,
            jurisdiction="EU",
            default_age=16,
        )

    with pytest.raises(NoticeRequired):
        grant(None)
    if not covered:
        with pytest.raises(NoticeMismatch):
            grant(notice)
    elif purpose.special_category_condition == "a" and not (explicit and with_evidence):
        with pytest.raises(ExplicitConsentRequired):
            grant(notice)
    else:
        grant(notice)


@MANY
@given(
    purpose=PURPOSE,
    subject=SUBJECT,
    later=st.integers(0, 12 * 24).map(lambda h: timedelta(hours=h)),
)
def test_a_grant_lapses_at_its_expiry_and_what_was_remembered_with_it(
    purpose: Purpose, subject: SubjectConsent, later: timedelta
) -> None:
    """API.md, Retention: a grant allows until its expires_at, not at it; a decision kept for
    reuse (policy.remember) holds no longer than the first grant it was made from expires."""
    at = NOW + later
    current = subject.purposes.get(purpose.key)
    reason = policy.decide(purpose, subject, at).reason
    granted = current is not None and current.state is State.GRANTED
    # (An `expired` entry says expired with no expires_at of its own.)
    if reason in {Reason.GRANTED, Reason.EXPIRED} and current is not None and granted:
        expires = current.expires_at
        assert (reason is Reason.EXPIRED) is (expires is not None and expires <= at)
    # A remembered decision holds for the very objects it was made from.
    registry: dict[str, Purpose] = {purpose.key: purpose}
    kept = policy.remember(reason, subject, registry, None, NOW)
    ends = [p.expires_at for p in subject.purposes.values() if p.expires_at and p.expires_at > NOW]
    assert kept.until == (min(ends) if ends else None)
    assert kept.holds(subject, registry, None, at) is (not ends or at < min(ends))


@MANY
@given(purposes=PURPOSES, subject=SUBJECT)
def test_recording_an_expiry_changes_no_decision(
    purposes: dict[str, Purpose], subject: SubjectConsent
) -> None:
    """`lapsed_grants` names the consent purposes whose latest entry is a grant lapsed by now,
    earliest first; replacing each by the `expired` entry the sweep writes changes no
    decision, no sale/share opt-out and no GPC bookkeeping: the check says expired from
    expires_at on, whenever the sweep runs. A lapsed grant is no opt-out."""
    lapsed = policy.lapsed_grants(subject, purposes, NOW)
    assert [at for _, at in lapsed] == sorted(at for _, at in lapsed)
    for key, current in subject.purposes.items():
        due = (
            current.state is State.GRANTED
            and current.expires_at is not None
            and current.expires_at <= NOW
            and key in purposes
            and purposes[key].legal_basis is LegalBasis.CONSENT
        )
        assert (key in dict(lapsed)) is due
    recorded = dataclasses.replace(
        subject,
        purposes=subject.purposes
        | {
            key: PurposeState(State.EXPIRED, at, None, Source.EXPIRY, None, False)
            for key, at in lapsed
        },
    )
    assert policy.lapsed_grants(recorded, purposes, NOW) == []
    for purpose in purposes.values():
        assert policy.decide(purpose, recorded, NOW) == policy.decide(purpose, subject, NOW)
        assert signals.gpc_on_record(recorded, purpose.key) is signals.gpc_on_record(
            subject, purpose.key
        )
    assert policy.sale_opted_out(purposes.values(), recorded, NOW) is policy.sale_opted_out(
        purposes.values(), subject, NOW
    )


# A Californian's sale/share grant, lapsed a day ago and not yet recorded by the sweep.
ADS = Purpose("ads", "Ads", LegalBasis.CONSENT, 30, sale_or_share=True)
LAPSED = SubjectConsent(
    "sub_p",
    3,
    {
        "ads": PurposeState(
            State.GRANTED,
            NOW - timedelta(days=30),
            NOW - timedelta(days=1),
            Source.WEB,
            None,
            False,
        )
    },
    jurisdiction="US-CA",
)


@MANY
@given(purposes=PURPOSES, subject=SUBJECT)
@example(purposes={"ads": ADS}, subject=LAPSED)
def test_recording_an_expiry_changes_no_compliance_field(
    purposes: dict[str, Purpose], subject: SubjectConsent
) -> None:
    """The subject's compliance (status, reasons, may_ask_again_at, changes_at) is the same
    before and after the sweep writes its `expired` entries: a lapsed grant is no CCPA opt-out
    either, so it starts no 12-month wait."""
    lapsed = policy.lapsed_grants(subject, purposes, NOW)
    recorded = dataclasses.replace(
        subject,
        purposes=subject.purposes
        | {
            key: PurposeState(State.EXPIRED, at, None, Source.EXPIRY, None, False)
            for key, at in lapsed
        },
    )
    before = compliance.assess(subject.subject_id, subject, purposes, NOW)
    after = compliance.assess(subject.subject_id, recorded, purposes, NOW)
    assert after == dataclasses.replace(before, version=recorded.version)


CONSENT_REASONS = [r for r in Reason if r is not Reason.NOT_REQUIRED]


def expected_status(reasons: list[Reason]) -> ComplianceStatus:  # noqa: PLR0911 - the list restated
    """API.md, Consent: the statuses over the consent-based purposes' check reasons."""
    found = set(reasons)
    allowed = found & {Reason.GRANTED, Reason.NOT_OPTED_OUT}
    if Reason.SUBJECT_ERASED in found:
        return ComplianceStatus.ERASED
    if found == {Reason.RESTRICTED}:
        return ComplianceStatus.RESTRICTED
    if found and found == allowed:
        if found == {Reason.GRANTED}:
            return ComplianceStatus.FULLY_OPTED_IN
        return ComplianceStatus.NOT_OPTED_OUT
    if allowed:
        return ComplianceStatus.PARTIAL_OPT_IN
    if found & {Reason.DENIED, Reason.OBJECTED}:
        return ComplianceStatus.FULLY_OPTED_OUT
    if Reason.EXPIRED in found:
        return ComplianceStatus.EXPIRED
    if Reason.RESTRICTED in found:
        return ComplianceStatus.RESTRICTED
    return ComplianceStatus.NOT_ASKED


@MANY
@given(reasons=st.lists(st.sampled_from(CONSENT_REASONS), max_size=6))
def test_a_compliance_status_is_what_its_reasons_say(reasons: list[Reason]) -> None:
    status = policy.compliance_status(reasons)
    assert status is expected_status(reasons)
    # Order and repetition of purposes change nothing.
    assert policy.compliance_status(sorted(set(reasons))) is status


@MANY
@given(purposes=PURPOSES, subject=st.one_of(st.none(), SUBJECT))
def test_a_subject_status_rests_on_the_checks_of_its_consent_purposes(
    purposes: dict[str, Purpose], subject: SubjectConsent | None
) -> None:
    reasons = policy.compliance_reasons(purposes, subject, NOW)
    consent = {k for k, p in purposes.items() if p.needs_consent}
    assert set(reasons) == consent
    assert all(reasons[k] is policy.decide(purposes[k], subject, NOW).reason for k in consent)
    status = policy.compliance_status(reasons.values())
    state = subject or SubjectConsent(subject_id="")
    if not consent:
        assert status is ComplianceStatus.NOT_ASKED
    elif state.erased:
        assert status is ComplianceStatus.ERASED
    elif state.restricted:
        assert status is ComplianceStatus.RESTRICTED
    if status is ComplianceStatus.FULLY_OPTED_IN:
        assert all(policy.decide(purposes[k], subject, NOW).allowed for k in consent)
    if status in {ComplianceStatus.FULLY_OPTED_OUT, ComplianceStatus.EXPIRED}:
        assert not any(policy.decide(purposes[k], subject, NOW).allowed for k in consent)


@MANY
@given(purposes=PURPOSES, subject=st.one_of(st.none(), SUBJECT))
@example(
    purposes={"ads": ADS},
    subject=dataclasses.replace(
        LAPSED,
        purposes={"ads": PurposeState(State.EXPIRED, NOW, None, Source.EXPIRY, None, False)},
    ),
)
def test_may_ask_again_a_year_after_the_latest_sale_opt_out_in_california(
    purposes: dict[str, Purpose], subject: SubjectConsent | None
) -> None:
    at = policy.may_ask_again_at(purposes.values(), subject)
    outs = [
        subject.purposes[k].updated_at
        for k, p in purposes.items()
        if subject is not None
        and p.sale_or_share
        and k in subject.purposes
        and subject.purposes[k].state in {State.DENIED, State.WITHDRAWN}
    ]
    if subject is None or subject.jurisdiction != "US-CA" or not outs:
        assert at is None
    else:
        assert at == max(outs).replace(year=max(outs).year + 1)


def test_may_ask_again_after_a_leap_day_opt_out_waits_the_full_year() -> None:
    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    ads = Purpose("ads", "Ads", LegalBasis.CONSENT, 30, sale_or_share=True)
    out = PurposeState(State.DENIED, leap, None, Source.WEB, None, False)
    state = SubjectConsent("sub_p", 1, {"ads": out}, jurisdiction="US-CA")
    assert policy.may_ask_again_at([ads], state) == datetime(2029, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "needs"),
    [
        ({}, False),
        ({"legal_basis": LegalBasis.CONTRACT}, True),
        ({"legal_basis": LegalBasis.LEGAL_OBLIGATION}, True),
        ({"legal_basis": LegalBasis.VITAL_INTERESTS}, True),
        ({"legal_basis": LegalBasis.LEGITIMATE_INTEREST}, False),
        ({"strictly_necessary": True}, True),
        ({"direct_marketing": True}, True),
        ({"sale_or_share": True}, False),
    ],
)
def test_only_some_purposes_need_a_persons_details_in_clear(
    changes: dict[str, object], needs: bool
) -> None:
    purpose = dataclasses.replace(Purpose("p", "P", LegalBasis.CONSENT, 30), **changes)  # type: ignore[arg-type]
    assert policy.needs_raw_value(purpose) is needs
