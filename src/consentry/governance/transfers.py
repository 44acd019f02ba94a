"""Whether an event may go to a system: GDPR Chapter V transfers, Art. 28 processor contracts
and CCPA sale/share opt-outs, as pure functions of the system, the subject and the time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.governance.models import CcpaRole, Mechanism, Refusal, Region, System

R = Region


@dataclass(frozen=True, slots=True)
class Adequacy:
    """One adequacy decision: the region it covers, the act, and the day it applies from."""

    region: Region
    decision: str
    since: date


# Dated adequacy decisions per legal regime (EU: Commission decisions under Art. 45; UK: the
# Data Protection Act 2018 and its adequacy regulations; CH: FADP, Annex 1 of the DPO). The US
# is never adequate as a region: a US recipient needs DPF certification.
ADEQUACY: dict[Region, tuple[Adequacy, ...]] = {
    R.EU: (
        Adequacy(R.CH, "Commission Decision 2000/518/EC", date(2000, 7, 26)),
        Adequacy(R.CA, "Commission Decision 2002/2/EC (PIPEDA)", date(2001, 12, 20)),
        Adequacy(R.JP, "Commission Implementing Decision (EU) 2019/419", date(2019, 1, 23)),
        Adequacy(R.UK, "Commission Implementing Decision (EU) 2021/1772", date(2021, 6, 28)),
        Adequacy(R.KR, "Commission Implementing Decision (EU) 2022/254", date(2021, 12, 17)),
    ),
    R.UK: (
        Adequacy(R.EU, "DPA 2018 Sch. 21 para. 5 (EEA states)", date(2021, 1, 1)),
        Adequacy(R.EEA, "DPA 2018 Sch. 21 para. 5 (EEA states)", date(2021, 1, 1)),
        Adequacy(R.CH, "DPA 2018 Sch. 21 para. 4 (retained EU decision)", date(2021, 1, 1)),
        Adequacy(R.CA, "DPA 2018 Sch. 21 para. 4 (retained EU decision)", date(2021, 1, 1)),
        Adequacy(R.JP, "DPA 2018 Sch. 21 para. 4 (retained EU decision)", date(2021, 1, 1)),
        Adequacy(
            R.KR,
            "The Data Protection (Adequacy) (Republic of Korea) Regulations 2022",
            date(2022, 12, 19),
        ),
    ),
    R.CH: (
        Adequacy(R.EU, "DPO Annex 1 (revised FADP)", date(2023, 9, 1)),
        Adequacy(R.EEA, "DPO Annex 1 (revised FADP)", date(2023, 9, 1)),
        Adequacy(R.UK, "DPO Annex 1 (revised FADP)", date(2023, 9, 1)),
        Adequacy(R.CA, "DPO Annex 1 (revised FADP)", date(2023, 9, 1)),
    ),
}
# The area inside which data moves freely under each regime.
AREA: dict[Region, frozenset[Region]] = {
    R.EU: frozenset({R.EU, R.EEA}),
    R.UK: frozenset({R.UK}),
    R.CH: frozenset({R.CH}),
}
# Contractual safeguards valid under each regime (the UK instruments only under UK law).
SAFEGUARDS: dict[Region, frozenset[Mechanism]] = {
    R.EU: frozenset({Mechanism.SCC, Mechanism.BCR}),
    R.UK: frozenset({Mechanism.UK_IDTA, Mechanism.UK_ADDENDUM, Mechanism.BCR}),
    R.CH: frozenset({Mechanism.SCC, Mechanism.BCR}),
}
_EUROPEAN = {R.EU: R.EU, R.EEA: R.EU, R.UK: R.UK, R.CH: R.CH}


def regime(exporter: Region, jurisdiction: str | None) -> Region | None:
    """Whose transfer rules cover this subject's data: a European exporter's own for every
    subject; otherwise the EU's for EU subjects (unknown counts as EU) and the UK's for UK
    subjects; None when no Chapter V regime applies."""
    if exporter in _EUROPEAN:
        return _EUROPEAN[exporter]
    subject = jurisdiction or "EU"
    return {"EU": R.EU, "UK": R.UK}.get(subject)


def adequate(regime_: Region, region: Region, today: date) -> Adequacy | None:
    """The adequacy decision of `regime_` covering `region` on `today`, if any."""
    for decision in ADEQUACY[regime_]:
        if decision.region is region and decision.since <= today:
            return decision
    return None


def without_adequacy(system: System, regime_: Region | None, today: date) -> bool:
    """Whether data sent to `system` leaves the regime's area for a region no adequacy decision
    covers on `today` (it relies on DPF, a safeguard, or nothing): an impact assessment's
    `transfer_without_adequacy`."""
    if regime_ is None or system.region in AREA[regime_]:
        return False
    return adequate(regime_, system.region, today) is None


def transfer_allowed(system: System, regime_: Region | None, today: date) -> bool:
    """Chapter V: inside the regime's area freely; outside only on an adequacy decision, a
    DPF certification still running (US), or a safeguard with a transfer impact assessment."""
    return _reaches(system, system.region, regime_, today)


def _reaches(system: System, region: Region, regime_: Region | None, today: date) -> bool:
    """Whether the system's transfer mechanism carries data to `region` (its own, or a
    sub-processor's)."""
    if regime_ is None or region in AREA[regime_]:
        return True
    mechanism = system.transfer_mechanism
    if mechanism is Mechanism.ADEQUACY:
        return adequate(regime_, region, today) is not None
    if mechanism is Mechanism.DPF:
        until = system.dpf_certified_until
        return region is R.US and until is not None and until > today
    if mechanism in SAFEGUARDS[regime_]:
        return bool(system.tia_ref)
    return False


def sub_processors_allowed(system: System, regime_: Region | None, today: date) -> bool:
    """Art. 28(4) and 44: the data goes on from the vendor to each of its sub-processors, so
    each one's region passes the transfer rule: inside the regime's area, a region with an
    adequacy decision in force, or the system's own mechanism (an SCC or BCR with a transfer
    impact assessment covers onward transfers; DPF only US sub-processors)."""
    record = system.vendor_record
    if record is None or regime_ is None:
        return True
    return all(
        _reaches(system, sub.region, regime_, today)
        or adequate(regime_, sub.region, today) is not None
        for sub in record.sub_processors
    )


def dpa_in_force(system: System, today: date) -> bool:
    """Art. 28(3): a system with a vendor gets data only while both hold: its own
    `dpa_signed` and a DPA in force in the vendor register (signed, not expired). A vendor
    the register does not hold has no DPA on record."""
    if not system.vendor:
        return True
    record = system.vendor_record
    return system.dpa_signed and record is not None and record.dpa_in_force(today)


def ccpa_role(system: System, today: date) -> CcpaRole | None:
    """The role the CCPA gives the system: a service provider or contractor only with the
    regs §7051 contract terms on record (its vendor's `ccpa_contract_at`, on or before
    `today`); otherwise a third party."""
    role = system.ccpa_role
    if role not in (CcpaRole.SERVICE_PROVIDER, CcpaRole.CONTRACTOR):
        return role
    record = system.vendor_record
    signed = None if record is None else record.ccpa_contract_at
    return role if signed is not None and signed <= today else CcpaRole.THIRD_PARTY


def chapter_v_allowed(system: System, regime_: Region | None, today: date) -> bool:
    """Whether data may go to `system` under the regime's transfer rules: to its own region
    (transfer_allowed) and on to each of its vendor's sub-processors (sub_processors_allowed).
    The delivery's gate (`transfer_blocked`) and `consentry evaluate` both ask this."""
    return transfer_allowed(system, regime_, today) and sub_processors_allowed(
        system, regime_, today
    )


def opt_out_unreachable(system: System, purposes: Mapping[str, Purpose], today: date) -> list[str]:
    """The sale_or_share purposes `system` gets data for as a CCPA third party (ccpa_role)
    with no `rights_endpoint`: a consumer's opt-out of them is a withdrawal to pass on to it
    (policy.withdrawal_forwarded; regs §7026(f)), which has no way to reach it but by hand."""
    if ccpa_role(system, today) is not CcpaRole.THIRD_PARTY or system.rights_endpoint:
        return []
    return sorted(p for p in system.purposes if policy.withdrawal_forwarded([p], purposes))


def refusal(
    system: System,
    subject: SubjectConsent | None,
    purposes: Iterable[Purpose],
    exporter: Region,
    now: datetime,
) -> Refusal | None:
    """Why this subject's data may not go to `system` now (the first rule that applies, in
    API.md's order), or None when it may. `purposes`: every purpose, for sale/share opt-outs."""
    jurisdiction = subject.jurisdiction if subject else None
    today = now.date()
    regime_ = regime(exporter, jurisdiction)
    if not chapter_v_allowed(system, regime_, today):
        return Refusal.TRANSFER_BLOCKED
    if not dpa_in_force(system, today):
        return Refusal.DPA_MISSING
    third_party = ccpa_role(system, today) is CcpaRole.THIRD_PARTY
    if third_party and policy.sale_opted_out(purposes, subject, now):
        return Refusal.SALE_OPTED_OUT
    if system.tcf_vendor_id is not None and not policy.tcf_vendor_consented(
        system.tcf_vendor_id, subject
    ):
        return Refusal.TCF_VENDOR_NO_CONSENT
    return None
