"""subjects/models.py: the jurisdiction a subject is treated under, and identity categories."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consentry.subjects.models import (
    DEFAULT_JURISDICTION,
    IDENTITY_CATEGORIES,
    IdentityType,
    Jurisdiction,
    Subject,
)

CREATED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_an_unknown_jurisdiction_is_treated_as_the_eu() -> None:
    # API.md, Conventions: unknown counts as EU, the strictest.
    assert DEFAULT_JURISDICTION is Jurisdiction.EU
    assert Subject("sub_1", None, CREATED).effective_jurisdiction is Jurisdiction.EU


@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_a_known_jurisdiction_is_its_own(jurisdiction: Jurisdiction) -> None:
    assert Subject("sub_1", jurisdiction, CREATED).effective_jurisdiction is jurisdiction


def test_every_identity_type_has_a_data_category_under_user() -> None:
    assert set(IDENTITY_CATEGORIES) == {t.value for t in IdentityType}
    assert all(category.startswith("user.") for category in IDENTITY_CATEGORIES.values())
