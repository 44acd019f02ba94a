"""ingest/models.py: what a field's category makes of it (personal, special, sensitive) and
which kept values are sealed under the subject's key. No I/O."""

from __future__ import annotations

import pytest

from consentry.ingest.models import FieldSpec, FieldType, Treatment, is_personal


@pytest.mark.parametrize(
    ("category", "personal"),
    [
        ("user", True),
        ("user.contact.email", True),
        ("user.health_and_medical", True),
        ("system.operations", False),
        ("username", False),
        ("users.contact", False),
        ("", False),
    ],
)
def test_personal_data_is_the_user_category_tree(category: str, personal: bool) -> None:
    assert is_personal(category) is personal


@pytest.mark.parametrize(
    ("category", "treatment", "sealed"),
    [
        ("user.contact.email", Treatment.KEEP, True),
        ("user.content", Treatment.REDACT, True),
        ("user.contact.email", Treatment.PSEUDONYMISE, False),
        ("user.financial", Treatment.TOKENISE, False),
        ("system.operations", Treatment.KEEP, False),
        ("system.operations", Treatment.REDACT, False),
    ],
)
def test_personal_values_that_stay_reversible_are_sealed(
    category: str, treatment: Treatment, sealed: bool
) -> None:
    field = FieldSpec("f", FieldType.STRING, category, treatment)
    assert field.sealed is sealed
    assert field.personal is is_personal(category)


def test_special_and_sensitive_come_from_the_category() -> None:
    health = FieldSpec("f", FieldType.STRING, "user.health_and_medical", Treatment.KEEP)
    page = FieldSpec("f", FieldType.STRING, "user.behavior.browsing_history", Treatment.KEEP)
    assert health.special
    assert health.sensitive
    assert not page.special
    assert not page.sensitive
