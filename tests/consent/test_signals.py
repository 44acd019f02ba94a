"""consent/signals.py: TC strings and GPC as intents, the stored vendor runs, the Sec-GPC header."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.consent import signals, tcf
from consentry.consent.models import (
    Intent,
    LegalBasis,
    Purpose,
    PurposeState,
    Source,
    State,
    SubjectConsent,
)
from consentry.errors import InvalidTCF
from tests.consent.helpers import tc_string

AT = datetime(2025, 3, 1, tzinfo=UTC)


def purpose(key: str, *, sale_or_share: bool = False) -> Purpose:
    return Purpose(key, key.title(), LegalBasis.CONSENT, 30, sale_or_share=sale_or_share)


PURPOSES = {
    key: purpose(key, sale_or_share=key in {"advertising", "third_party_sharing"})
    for key in ("advertising", "analytics", "location", "personalization", "third_party_sharing")
}


def states(intents: list[Intent]) -> dict[str, State]:
    assert all(i.source is Source.TCF for i in intents)
    return {i.purpose: i.state for i in intents}


def test_a_purpose_is_granted_only_when_all_its_tcf_purposes_are() -> None:
    signal = signals.tcf_signal(tc_string({1, 3, 4, 8}, special_features={1}), PURPOSES)
    assert states(signal.intents) == {
        "advertising": State.GRANTED,
        "personalization": State.DENIED,
        "analytics": State.DENIED,
        "location": State.GRANTED,
    }
    assert signal.vendors == frozenset({28, 755})


def test_only_purposes_that_exist_get_an_intent() -> None:
    signal = signals.tcf_signal(tc_string({1, 8, 9}), {"analytics": PURPOSES["analytics"]})
    assert states(signal.intents) == {"analytics": State.GRANTED}


def test_the_publisher_segment_decides_over_the_core_purposes() -> None:
    core = tcf.decode(tc_string({1, 3, 4, 5, 6, 8, 9}))
    publisher = tcf.PublisherTC(purposes_consent=frozenset({1, 8, 9}))
    text = tcf.encode(replace(core, publisher_tc=publisher))
    assert states(signals.tcf_signal(text, PURPOSES).intents) == {
        "advertising": State.DENIED,
        "personalization": State.DENIED,
        "analytics": State.GRANTED,
        "location": State.DENIED,
    }


def test_legitimate_interest_vendors_are_not_consented_vendors() -> None:
    core = tcf.decode(tc_string({1}))
    text = tcf.encode(
        replace(
            core,
            vendor_consents=frozenset({7}),
            vendor_legitimate_interests=frozenset({7, 9}),
        )
    )
    assert signals.tcf_signal(text, PURPOSES).vendors == frozenset({7})


@pytest.mark.parametrize("text", ["", "not a tc string", "CP!!", "A" * 8])
def test_an_undecodable_string_is_invalid_tcf(text: str) -> None:
    with pytest.raises(InvalidTCF):
        signals.tcf_signal(text, PURPOSES)


def test_a_policy_older_than_v2_2_is_refused() -> None:
    with pytest.raises(InvalidTCF, match=r"older than v2\.2"):
        signals.tcf_signal(tc_string({1}, policy=signals.MIN_TCF_POLICY_VERSION - 1), PURPOSES)
    assert signals.tcf_signal(
        tc_string({1}, policy=signals.MIN_TCF_POLICY_VERSION), PURPOSES
    ).intents


def test_vendor_runs_notation() -> None:
    assert signals.vendor_runs(frozenset({1, 2, 3, 5, 8, 9})) == "1-3,5,8-9"
    assert signals.vendor_runs(frozenset()) == ""
    assert signals.vendor_set("1-3,5,8-9") == frozenset({1, 2, 3, 5, 8, 9})
    assert signals.vendor_set("") == frozenset()
    assert signals.vendor_set(None) is None


@given(st.frozensets(st.integers(min_value=1, max_value=65535), max_size=60))
def test_vendor_runs_round_trip(vendors: frozenset[int]) -> None:
    assert signals.vendor_set(signals.vendor_runs(vendors)) == vendors


def test_gpc_denies_every_sale_or_share_purpose_and_nothing_else() -> None:
    intents = signals.gpc_intents(PURPOSES)
    assert intents == [
        Intent("advertising", State.DENIED, Source.GPC),
        Intent("third_party_sharing", State.DENIED, Source.GPC),
    ]


def _state(gpc: bool, **purposes: State) -> SubjectConsent:
    return SubjectConsent(
        "sub_1",
        gpc=gpc,
        purposes={
            key: PurposeState(state, AT, None, Source.WEB, None, False)
            for key, state in purposes.items()
        },
    )


def test_gpc_changes_nothing_only_when_on_record_and_no_sale_purpose_is_granted() -> None:
    settled = _state(True, advertising=State.DENIED, third_party_sharing=State.WITHDRAWN)
    assert not signals.gpc_changes(settled, PURPOSES)
    assert signals.gpc_on_record(settled, "advertising")
    # Not yet on record, a sale purpose granted since, or a sale purpose never decided.
    assert signals.gpc_changes(_state(False, advertising=State.DENIED), {})
    granted = _state(True, advertising=State.GRANTED, third_party_sharing=State.DENIED)
    assert signals.gpc_changes(granted, PURPOSES)
    assert not signals.gpc_on_record(granted, "advertising")
    assert signals.gpc_changes(_state(True, advertising=State.DENIED), PURPOSES)
    # A purpose that is not sold or shared never needs GPC.
    assert not signals.gpc_changes(settled, {"analytics": PURPOSES["analytics"]})


@pytest.mark.parametrize(
    ("value", "signal"),
    [("1", True), (" 1 ", True), ("0", False), ("true", False), ("", False), (None, False)],
)
def test_only_sec_gpc_1_is_a_signal(value: str | None, signal: bool) -> None:
    assert signals.gpc_header(value) is signal
