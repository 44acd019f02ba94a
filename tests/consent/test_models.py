"""consent/models.py: the age bands' lowest ages and which legal basis needs consent."""

from __future__ import annotations

import pytest

from consentry.consent.models import AgeBand, LegalBasis, Purpose


@pytest.mark.parametrize(
    ("band", "age"),
    [
        (AgeBand.UNDER_13, 0),
        (AgeBand.AGE_13_15, 13),
        (AgeBand.AGE_16_17, 16),
        (AgeBand.ADULT, 18),
        # API.md, Consent: an unknown age counts as adult.
        (AgeBand.UNKNOWN, 18),
    ],
)
def test_lowest_age_of_each_band(band: AgeBand, age: int) -> None:
    assert band.lowest_age == age


@pytest.mark.parametrize("basis", list(LegalBasis))
def test_only_the_consent_basis_needs_consent(basis: LegalBasis) -> None:
    purpose = Purpose("analytics", "Analytics", basis, 30)
    assert purpose.needs_consent is (basis is LegalBasis.CONSENT)
