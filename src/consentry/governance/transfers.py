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
    if regime_ is None or system.region in AREA[regime_]:
        return True
    mechanism = system.transfer_mechanism
    if mechanism is Mechanism.ADEQUACY:
        return adequate(regime_, system.region, today) is not None
    if mechanism is Mechanism.DPF:
        until = system.dpf_certified_until
        return system.region is R.US and until is not None and until > today
    if mechanism in SAFEGUARDS[regime_]:
        return bool(system.tia_ref)
    return False


def dpa_in_force(system: System) -> bool:
    """Art. 28(3): a system run by a vendor (a processor) gets data only under a signed data
    processing agreement (`dpa_signed`); one without a vendor needs none."""
    return not system.vendor or system.dpa_signed


def opt_out_unreachable(system: System, purposes: Mapping[str, Purpose]) -> list[str]:
    """The sale_or_share purposes `system` gets data for as a CCPA third party with no
    `rights_endpoint`: a consumer's opt-out of them is a withdrawal to pass on to it
    (policy.withdrawal_forwarded; regs §7026(f)), which has no way to reach it but by hand."""
    if system.ccpa_role is not CcpaRole.THIRD_PARTY or system.rights_endpoint is not None:
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
    if not transfer_allowed(system, regime(exporter, jurisdiction), now.date()):
        return Refusal.TRANSFER_BLOCKED
    if not dpa_in_force(system):
        return Refusal.DPA_MISSING
    if system.ccpa_role is CcpaRole.THIRD_PARTY and policy.sale_opted_out(purposes, subject, now):
        return Refusal.SALE_OPTED_OUT
    if system.tcf_vendor_id is not None and not policy.tcf_vendor_consented(
        system.tcf_vendor_id, subject
    ):
        return Refusal.TCF_VENDOR_NO_CONSENT
    return None
