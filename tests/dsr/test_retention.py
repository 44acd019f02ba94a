"""dsr/retention.py: when a kept event's retention ends, and the ground named per jurisdiction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from consentry.consent.models import LegalBasis, Purpose
from consentry.dsr.retention import (
    ART17_3_B,
    ART17_3_E,
    CCPA_GROUNDS,
    CONTRACT_ONGOING,
    ground_for,
    retention_ends,
)

_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(occurred=_MOMENTS, received=_MOMENTS, days=st.integers(0, 3650))
def test_retention_runs_from_the_earlier_of_occurrence_and_receipt(
    occurred: datetime, received: datetime, days: int
) -> None:
    """A client's clock set late never keeps an event longer."""
    purpose = Purpose("billing", "Billing", LegalBasis.LEGAL_OBLIGATION, retention_days=days)
    ends = retention_ends(occurred, received, purpose)
    assert ends == min(occurred, received) + timedelta(days=days)
    assert ends <= received + timedelta(days=days)
    assert ends <= occurred + timedelta(days=days)


def test_a_californian_erasure_names_the_ccpa_exception() -> None:
    for ground in (ART17_3_B, ART17_3_E, CONTRACT_ONGOING):
        assert ground_for(ground, "EU") == ground
        assert ground_for(ground, "UK") == ground
        assert ground_for(ground, "US-CA") == CCPA_GROUNDS[ground]
    assert ground_for(CONTRACT_ONGOING, "US-CA") == "1798.105(d)(1)"
