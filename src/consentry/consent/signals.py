"""Signals that become ledger entries: Global Privacy Control and IAB TCF v2.2 TC strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from consentry.consent import tcf, tcf_segments
from consentry.consent.models import Intent, Purpose, Source, State, SubjectConsent
from consentry.errors import InvalidTCF

# API.md, Consent: which TCF purposes a Consentry purpose needs, all of them consented.
TCF_PURPOSES: dict[str, frozenset[int]] = {
    "advertising": frozenset({1, 3, 4}),
    "personalization": frozenset({1, 5, 6}),
    "analytics": frozenset({1, 8, 9}),
}
# Special feature 1: use precise geolocation data.
TCF_SPECIAL_FEATURES: dict[str, frozenset[int]] = {"location": frozenset({1})}
MIN_TCF_POLICY_VERSION = 4


@dataclass(frozen=True, slots=True)
class TCFSignal:
    """What a TC string records: one intent per mapped purpose that exists, and the GVL
    vendors with consent (the vendor gate of deliveries, transfers.refusal)."""

    intents: list[Intent]
    vendors: frozenset[int]


def tcf_signal(tc_string: str, purposes: Mapping[str, Purpose]) -> TCFSignal:
    """Decode a TC string into its intents and vendor consents; InvalidTCF if bad.

    A publisher TC segment, when present, is what the publisher's own purposes were
    consented to, so it decides the mapped purposes instead of the core segment's purpose
    consents (which are the vendors'); it has no special features, so `location` stays
    with the core segment. Custom purposes and legitimate-interest transparency grant
    nothing: the mapping names standard purposes, and consent is not transparency.
    """
    try:
        decoded = tcf.decode(tc_string)
    except tcf.TCFDecodeError as exc:
        raise InvalidTCF(f"the TC string cannot be decoded: {exc}") from None
    if decoded.policy_version < MIN_TCF_POLICY_VERSION:
        raise InvalidTCF(
            f"TCF policy version {decoded.policy_version} is older than v2.2 "
            f"(policy version {MIN_TCF_POLICY_VERSION})"
        )
    publisher = decoded.publisher_tc
    consented = decoded.purposes_consent if publisher is None else publisher.purposes_consent
    intents = []
    for key, needed in TCF_PURPOSES.items():
        if key in purposes:
            granted = needed <= consented
            intents.append(Intent(key, State.GRANTED if granted else State.DENIED, Source.TCF))
    for key, needed in TCF_SPECIAL_FEATURES.items():
        if key in purposes:
            granted = needed <= decoded.special_feature_opt_ins
            intents.append(Intent(key, State.GRANTED if granted else State.DENIED, Source.TCF))
    # Only VendorConsents: a vendor's legitimate interest is not consent, and a disclosed
    # vendor without consent was shown and not chosen (docs/decisions.md).
    return TCFSignal(intents, decoded.vendor_consents)


def vendor_runs(vendors: frozenset[int]) -> str:
    """A vendor set in "1-5,8" run notation, as the subject row keeps it."""
    return ",".join(
        str(first) if first == last else f"{first}-{last}"
        for first, last in tcf_segments.runs(sorted(vendors))
    )


def vendor_set(runs: str | None) -> frozenset[int] | None:
    """The vendor set of `vendor_runs`; None (no TC string recorded) stays None."""
    if runs is None:
        return None
    out: set[int] = set()
    for part in filter(None, runs.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def gpc_intents(purposes: Mapping[str, Purpose]) -> list[Intent]:
    """GPC opts out of every sale_or_share purpose (CCPA regs §7025)."""
    return [
        Intent(key, State.DENIED, Source.GPC)
        for key, purpose in sorted(purposes.items())
        if purpose.sale_or_share
    ]


def gpc_on_record(state: SubjectConsent, purpose: str) -> bool:
    """Whether a GPC denial of `purpose` would change nothing: the subject's GPC opt-out is
    on record and the purpose is denied or withdrawn (a lapsed grant is no opt-out: the
    signal records one)."""
    current = state.purposes.get(purpose)
    return state.gpc and current is not None and current.state in {State.DENIED, State.WITHDRAWN}


def gpc_changes(state: SubjectConsent, purposes: Mapping[str, Purpose]) -> bool:
    """Whether a GPC signal would change anything for this subject."""
    return not state.gpc or any(
        not gpc_on_record(state, key) for key, purpose in purposes.items() if purpose.sale_or_share
    )


def gpc_header(value: str | None) -> bool:
    """`Sec-GPC: 1` is the only value the GPC specification defines as a signal."""
    return value is not None and value.strip() == "1"
