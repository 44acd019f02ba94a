"""ingest/minimise.py: which fields of an event are kept, for which purposes, sealed or in
clear, the plans remembered per shape of event, and the stored purpose bits. No I/O."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.consent.models import LegalBasis, Purpose, SubjectConsent
from consentry.ingest import minimise
from consentry.ingest.models import FieldSpec, FieldType, Treatment

PURPOSES = {
    key: Purpose(key, key.title(), LegalBasis.CONSENT, 30, bit=bit)
    for bit, key in enumerate(("analytics", "personalization", "marketing"))
}
STATE = SubjectConsent("sub_0123456789abcdef0123")


def spec(
    name: str, category: str, treatment: Treatment, purposes: set[str] | None = None
) -> FieldSpec:
    return FieldSpec(
        name,
        FieldType.STRING,
        category,
        treatment,
        frozenset(purposes) if purposes is not None else None,
    )


FIELDS = {
    s.name: s
    for s in (
        spec("url", "system.operations", Treatment.KEEP),
        spec("page", "user.behavior.browsing_history", Treatment.KEEP),
        spec("email", "user.contact.email", Treatment.PSEUDONYMISE),
        spec("message", "user.content", Treatment.REDACT),
        spec("card", "user.financial", Treatment.TOKENISE),
        spec("debug", "system.operations", Treatment.DROP),
        spec("offer", "user.behavior", Treatment.KEEP, {"personalization"}),
        spec("mailing", "user.behavior", Treatment.KEEP, {"marketing"}),
    )
}
ALL = tuple(FIELDS)


def plan(allowed: list[str], present: tuple[str, ...] = ALL) -> minimise.Plan:
    return minimise.Planner().plan(FIELDS, False, allowed, present, PURPOSES, STATE)


def test_personal_values_kept_as_they_are_are_sealed_the_rest_in_clear() -> None:
    p = plan(["analytics", "personalization"])
    assert p.keep == (("url", False), ("page", True), ("offer", True))
    # A pseudonym or a token cannot be reversed from the row: in clear; redacted text is
    # still the person's words: sealed.
    assert p.treat == (
        ("email", Treatment.PSEUDONYMISE, False),
        ("message", Treatment.REDACT, True),
        ("card", Treatment.TOKENISE, False),
    )


def test_a_dropped_field_and_a_field_of_no_allowed_purpose_are_not_kept() -> None:
    p = plan(["analytics", "personalization"])
    assert "debug" not in p.fields
    assert "mailing" not in p.fields


def test_a_field_with_its_own_purposes_is_shown_only_to_them() -> None:
    p = plan(["analytics", "personalization"])
    assert p.fields == {
        "url": None,
        "page": None,
        "offer": ["personalization"],
        "email": None,
        "message": None,
        "card": None,
    }
    assert plan(["analytics"], ("url", "page")).fields == {"url": None, "page": None}


def test_only_fields_present_are_planned() -> None:
    p = plan(["analytics"], ("url",))
    assert (p.keep, p.treat, p.fields) == ((("url", False),), (), {"url": None})


def test_the_plan_records_the_event_purposes_as_json_and_bits() -> None:
    p = plan(["analytics", "marketing"])
    assert json.loads(p.purposes_json) == ["analytics", "marketing"]
    assert p.purpose_bits == 0b101


def test_a_plan_is_remembered_per_shape_and_per_fields_mapping() -> None:
    planner = minimise.Planner()
    first = planner.plan(FIELDS, False, ["analytics"], ALL, PURPOSES, STATE)
    assert planner.plan(FIELDS, False, ["analytics"], ALL, PURPOSES, STATE) is first
    assert planner.plan(FIELDS, False, ["marketing"], ALL, PURPOSES, STATE) is not first
    # A reloaded schema is a new mapping: never a plan made for the old one.
    reloaded = dict(FIELDS)
    reloaded["url"] = spec("url", "system.operations", Treatment.DROP)
    assert ("url", False) not in planner.plan(
        reloaded, False, ["analytics"], ALL, PURPOSES, STATE
    ).keep


def test_a_schema_with_special_fields_is_planned_per_subject_state() -> None:
    planner = minimise.Planner()
    one = planner.plan(FIELDS, True, ["analytics"], ALL, PURPOSES, STATE)
    assert planner.plan(FIELDS, True, ["analytics"], ALL, PURPOSES, STATE) is not one


def test_purpose_mask_needs_every_purpose_to_have_its_bit() -> None:
    assert minimise.purpose_mask([]) == 0
    assert minimise.purpose_mask(PURPOSES.values()) == 0b111
    with pytest.raises(ValueError, match="no bit yet"):
        minimise.purpose_mask([Purpose("new", "New", LegalBasis.CONSENT, 30)])


@given(st.text("0123456789abcdef", min_size=20, max_size=20))
def test_subject_key_is_60_bits_of_the_id(random_part: str) -> None:
    key = minimise.subject_key(f"sub_{random_part}")
    assert 0 <= key < 2**60
    assert key == int(random_part[:15], 16)


def test_delivery_is_handed_the_values_sent_of_kept_fields_and_the_treated_values_of_others() -> (
    None
):
    p = plan(["analytics", "personalization"])
    properties = {"url": "/a", "page": "/b", "offer": "x", "email": "e", "message": "m"}
    treated = {"email": "pse_1", "message": "<EMAIL>", "card": "tok_1"}
    assert minimise.values(p, properties, treated) == {
        "url": "/a",
        "page": "/b",
        "offer": "x",
        "email": "pse_1",
        "message": "<EMAIL>",
        "card": "tok_1",
    }


def test_stored_json_has_sorted_keys_and_no_whitespace() -> None:
    assert minimise.encode({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert minimise.encode_bytes({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


def test_a_plan_is_remembered_for_the_same_purposes_only() -> None:
    # A purpose's conditions (a §7027(m) use, an Art. 9 condition) decide which fields serve
    # it, and a configuration change replaces the purposes: a plan made before is not reused.
    planner = minimise.Planner()
    first = planner.plan(FIELDS, False, ["analytics"], ALL, PURPOSES, STATE)
    assert planner.plan(FIELDS, False, ["analytics"], ALL, PURPOSES, STATE) is first
    reloaded = dict(PURPOSES)
    assert planner.plan(FIELDS, False, ["analytics"], ALL, reloaded, STATE) is not first
