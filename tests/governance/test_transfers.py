"""Delivery rules as pure functions: GDPR Chapter V, Art. 28 and CCPA sale/share opt-outs,
one table row per case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from consentry.consent.models import (
    AgeBand,
    LegalBasis,
    Purpose,
    PurposeState,
    Source,
    State,
    SubjectConsent,
)
from consentry.governance.models import (
    CcpaRole,
    Mechanism,
    Refusal,
    Region,
    SubProcessor,
    System,
    SystemKind,
    Vendor,
    VendorRisk,
)
from consentry.governance.transfers import (
    opt_out_unreachable,
    refusal,
    regime,
    transfer_allowed,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ADVERTISING = Purpose("advertising", "Ads", LegalBasis.CONSENT, 30, sale_or_share=True)
ANALYTICS = Purpose("analytics", "Analytics", LegalBasis.CONSENT, 30)
PURPOSES = [ANALYTICS, ADVERTISING]
BASE = System(
    system_id="crm",
    name="CRM",
    kind=SystemKind.WEBHOOK,
    endpoint="https://crm.example.com/hook",
    purposes=frozenset({"analytics"}),
    data_categories=frozenset({"user.contact"}),
    region=Region.EU,
    transfer_mechanism=Mechanism.NONE,
    dpa_signed=True,
)


def system(**changes: object) -> System:
    return replace(BASE, **changes)  # type: ignore[arg-type]


def subject(jurisdiction: str | None = "EU", **changes: object) -> SubjectConsent:
    return replace(SubjectConsent("sub_1", jurisdiction=jurisdiction), **changes)  # type: ignore[arg-type]


def purpose_state(state: State, source: Source = Source.WEB) -> PurposeState:
    return PurposeState(state, NOW, None, source, None, False)


FUTURE = date(2027, 6, 30)
PAST = date(2026, 1, 31)


@pytest.mark.parametrize(
    ("case", "exporter", "jurisdiction", "sys", "allowed"),
    [
        ("eu inside eea", Region.EU, "EU", system(region=Region.EEA), True),
        ("us without mechanism", Region.EU, "EU", system(region=Region.US), False),
        (
            "us adequacy is no ground",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.ADEQUACY),
            False,
        ),
        (
            "us dpf certified",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.DPF, dpf_certified_until=FUTURE),
            True,
        ),
        (
            "us dpf lapsed",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.DPF, dpf_certified_until=PAST),
            False,
        ),
        (
            "us dpf without date",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.DPF),
            False,
        ),
        (
            "dpf only for the us",
            Region.EU,
            "EU",
            system(region=Region.IN, transfer_mechanism=Mechanism.DPF, dpf_certified_until=FUTURE),
            False,
        ),
        (
            "us scc with tia",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.SCC, tia_ref="TIA-2026-01"),
            True,
        ),
        (
            "us scc without tia",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.SCC),
            False,
        ),
        (
            "bcr with tia",
            Region.EU,
            "EU",
            system(region=Region.IN, transfer_mechanism=Mechanism.BCR, tia_ref="TIA-7"),
            True,
        ),
        (
            "uk idta is no eu safeguard",
            Region.EU,
            "EU",
            system(region=Region.US, transfer_mechanism=Mechanism.UK_IDTA, tia_ref="TIA-7"),
            False,
        ),
        (
            "uk exporter idta with tia",
            Region.UK,
            "UK",
            system(region=Region.US, transfer_mechanism=Mechanism.UK_IDTA, tia_ref="TIA-7"),
            True,
        ),
        (
            "uk exporter addendum without tia",
            Region.UK,
            "UK",
            system(region=Region.US, transfer_mechanism=Mechanism.UK_ADDENDUM),
            False,
        ),
        (
            "japan adequate",
            Region.EU,
            "EU",
            system(region=Region.JP, transfer_mechanism=Mechanism.ADEQUACY),
            True,
        ),
        ("japan without a declared ground", Region.EU, "EU", system(region=Region.JP), False),
        (
            "brazil not adequate",
            Region.EU,
            "EU",
            system(region=Region.BR, transfer_mechanism=Mechanism.ADEQUACY),
            False,
        ),
        (
            "uk adequate for the eu",
            Region.EU,
            "US",
            system(region=Region.UK, transfer_mechanism=Mechanism.ADEQUACY),
            True,
        ),
        ("eu exporter covers us subjects", Region.EU, "US", system(region=Region.US), False),
        (
            "uk exporter: eu is abroad, adequate",
            Region.UK,
            "EU",
            system(region=Region.EU, transfer_mechanism=Mechanism.ADEQUACY),
            True,
        ),
        ("uk exporter: eu without ground", Region.UK, "EU", system(region=Region.EU), False),
        ("ch exporter inside ch", Region.CH, "EU", system(region=Region.CH), True),
        ("us exporter, us subject: no regime", Region.US, "US", system(region=Region.IN), True),
        ("us exporter, us-ca subject", Region.US, "US-CA", system(region=Region.US), True),
        ("us exporter, eu subject to us", Region.US, "EU", system(region=Region.US), False),
        ("us exporter, unknown counts as eu", Region.US, None, system(region=Region.US), False),
        ("us exporter, uk subject to uk", Region.US, "UK", system(region=Region.UK), True),
        ("us exporter, eu subject to eu", Region.US, "EU", system(region=Region.EU), True),
    ],
)
def test_transfer_rules(
    case: str, exporter: Region, jurisdiction: str | None, sys: System, allowed: bool
) -> None:
    got = refusal(sys, subject(jurisdiction), PURPOSES, exporter, NOW)
    assert (got is None) is allowed, case
    if not allowed:
        assert got is Refusal.TRANSFER_BLOCKED


def test_adequacy_is_dated() -> None:
    korea = system(region=Region.KR, transfer_mechanism=Mechanism.ADEQUACY)
    assert transfer_allowed(korea, regime(Region.EU, "EU"), date(2022, 1, 1))
    assert not transfer_allowed(korea, regime(Region.EU, "EU"), date(2021, 1, 1))


def test_dpf_ends_on_its_date() -> None:
    dpf = system(region=Region.US, transfer_mechanism=Mechanism.DPF, dpf_certified_until=NOW.date())
    assert refusal(dpf, subject(), PURPOSES, Region.EU, NOW) is Refusal.TRANSFER_BLOCKED


def vendor(**changes: object) -> Vendor:
    """A registered vendor whose DPA and CCPA terms are in force on NOW."""
    base = Vendor(
        vendor_id="example",
        name="Example Ltd",
        risk=VendorRisk.LOW,
        reviewed_at=date(2026, 6, 1),
        dpa_signed_at=date(2025, 1, 15),
        ccpa_contract_at=date(2025, 1, 15),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def vendored(record: Vendor | None = None, **changes: object) -> System:
    return system(vendor="example", vendor_record=record or vendor(), **changes)


@pytest.mark.parametrize(
    ("case", "sys", "expected"),
    [
        ("dpa not signed", vendored(dpa_signed=False), Refusal.DPA_MISSING),
        ("dpa signed and on record", vendored(), None),
        ("no vendor", system(vendor=None, dpa_signed=False), None),
        # Attested by the system but not in the register: no DPA on record.
        ("unregistered vendor", system(vendor="Example Ltd", dpa_signed=True), Refusal.DPA_MISSING),
        ("no dpa date", vendored(vendor(dpa_signed_at=None)), Refusal.DPA_MISSING),
        ("signed later", vendored(vendor(dpa_signed_at=date(2026, 12, 1))), Refusal.DPA_MISSING),
        ("expires later", vendored(vendor(dpa_expires_at=date(2026, 11, 23))), None),
        ("expires today", vendored(vendor(dpa_expires_at=NOW.date())), Refusal.DPA_MISSING),
        ("lapsed", vendored(vendor(dpa_expires_at=date(2026, 1, 1))), Refusal.DPA_MISSING),
    ],
)
def test_dpa(case: str, sys: System, expected: Refusal | None) -> None:
    assert refusal(sys, subject(), PURPOSES, Region.EU, NOW) is expected, case


def subs(*regions: Region) -> Vendor:
    return vendor(
        sub_processors=tuple(SubProcessor(f"Sub {r}", r, date(2025, 1, 15)) for r in regions)
    )


@pytest.mark.parametrize(
    ("case", "sys", "expected"),
    [
        ("inside the EEA", vendored(subs(Region.EU, Region.EEA)), None),
        ("adequate region, EU system", vendored(subs(Region.JP)), None),
        ("US sub-processor, EU system", vendored(subs(Region.US)), Refusal.TRANSFER_BLOCKED),
        ("one of two blocked", vendored(subs(Region.EU, Region.OTHER)), Refusal.TRANSFER_BLOCKED),
        (
            "covered by the system's SCCs",
            vendored(subs(Region.OTHER), transfer_mechanism=Mechanism.SCC, tia_ref="TIA-1"),
            None,
        ),
        (
            "DPF covers the US only",
            vendored(
                subs(Region.US, Region.IN),
                region=Region.US,
                transfer_mechanism=Mechanism.DPF,
                dpf_certified_until=date(2099, 1, 1),
            ),
            Refusal.TRANSFER_BLOCKED,
        ),
    ],
)
def test_sub_processors_pass_the_transfer_rules(
    case: str, sys: System, expected: Refusal | None
) -> None:
    assert refusal(sys, subject("EU"), PURPOSES, Region.EU, NOW) is expected, case
    # A US-CA subject's data under a US exporter: no Chapter V regime applies.
    assert refusal(sys, subject("US-CA"), PURPOSES, Region.US, NOW) is None, case


THIRD = system(ccpa_role=CcpaRole.THIRD_PARTY)


@pytest.mark.parametrize(
    ("case", "sys", "state", "expected"),
    [
        (
            "denied ads, third party",
            THIRD,
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "gpc denial",
            THIRD,
            subject(
                "US-CA", gpc=True, purposes={"advertising": purpose_state(State.DENIED, Source.GPC)}
            ),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "gpc before the purpose existed",
            THIRD,
            subject("US-CA", gpc=True),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "withdrawn",
            THIRD,
            subject("US-CA", purposes={"advertising": purpose_state(State.WITHDRAWN)}),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "denied ads, service provider",
            vendored(ccpa_role=CcpaRole.SERVICE_PROVIDER),
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            None,
        ),
        (
            "denied ads, contractor",
            vendored(ccpa_role=CcpaRole.CONTRACTOR),
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            None,
        ),
        # Without the regs §7051 terms on record, a service provider is a third party.
        (
            "denied ads, service provider without ccpa_contract_at",
            vendored(vendor(ccpa_contract_at=None), ccpa_role=CcpaRole.SERVICE_PROVIDER),
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "denied ads, contractor with terms signed later",
            vendored(vendor(ccpa_contract_at=date(2027, 1, 1)), ccpa_role=CcpaRole.CONTRACTOR),
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "denied ads, service provider without a vendor",
            system(ccpa_role=CcpaRole.SERVICE_PROVIDER),
            subject("US-CA", purposes={"advertising": purpose_state(State.DENIED)}),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "granted ads, third party",
            THIRD,
            subject("US-CA", purposes={"advertising": purpose_state(State.GRANTED)}),
            None,
        ),
        ("never asked adult", THIRD, subject("US-CA"), None),
        (
            "us-ca minor never asked",
            THIRD,
            subject("US-CA", age_band=AgeBand.AGE_13_15),
            Refusal.SALE_OPTED_OUT,
        ),
        (
            "us-ca minor with grant",
            THIRD,
            subject(
                "US-CA",
                age_band=AgeBand.AGE_13_15,
                purposes={"advertising": purpose_state(State.GRANTED)},
            ),
            None,
        ),
    ],
)
def test_sale_opt_out(
    case: str, sys: System, state: SubjectConsent, expected: Refusal | None
) -> None:
    assert refusal(sys, state, PURPOSES, Region.US, NOW) is expected, case


def test_rules_apply_in_api_order() -> None:
    everything_wrong = system(
        region=Region.US, vendor="Example Ltd", dpa_signed=False, ccpa_role=CcpaRole.THIRD_PARTY
    )
    opted_out = subject("EU", purposes={"advertising": purpose_state(State.DENIED)})
    got = refusal(everything_wrong, opted_out, PURPOSES, Region.EU, NOW)
    assert got is Refusal.TRANSFER_BLOCKED


@pytest.mark.parametrize(
    ("buyer", "unreachable"),
    [
        (system(ccpa_role=CcpaRole.THIRD_PARTY), ["advertising"]),
        (
            system(ccpa_role=CcpaRole.THIRD_PARTY, rights_endpoint="https://crm.example.com/r"),
            [],
        ),
        (vendored(ccpa_role=CcpaRole.SERVICE_PROVIDER), []),
        # A service provider without the contract terms on record is a third party.
        (
            vendored(vendor(ccpa_contract_at=None), ccpa_role=CcpaRole.SERVICE_PROVIDER),
            ["advertising"],
        ),
        (system(ccpa_role=None), []),
    ],
)
def test_a_third_party_buying_data_needs_a_path_for_opt_outs(
    buyer: System, unreachable: list[str]
) -> None:
    keyed = {p.key: p for p in PURPOSES}
    buyer = replace(buyer, purposes=frozenset({"analytics", "advertising"}))
    assert opt_out_unreachable(buyer, keyed, NOW.date()) == unreachable
    # Not a sale or share: nothing to opt out of.
    only_analytics = replace(buyer, purposes=frozenset({"analytics"}))
    assert opt_out_unreachable(only_analytics, keyed, NOW.date()) == []
