"""subjects/normalise.py: one spelling per identity, and what is refused (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, reject
from hypothesis import strategies as st

from consentry.errors import InvalidIdentity, UnknownIdentityType
from consentry.subjects.models import Identity, IdentityType
from consentry.subjects.normalise import MAX_LENGTH, identity_type, normalise

EMAIL = IdentityType.EMAIL
PHONE = IdentityType.PHONE
CUSTOMER = IdentityType.CUSTOMER_ID

UK = "+447700900123"
US = "+12015550123"


# --- email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "ana@example.com",
        "Ana@Example.com ",
        "  ANA@EXAMPLE.COM",
        "\tAna@example.COM\n",
        "\u00a0ana@example.com",
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str) -> None:
    assert normalise(EMAIL, raw) == Identity(EMAIL, "ana@example.com")


def test_email_is_unicode_composed_before_comparison() -> None:
    decomposed = "Zoe\u0308@Example.com"  # e + combining diaeresis
    composed = "zo\u00eb@example.com"
    assert normalise(EMAIL, decomposed).value == composed
    assert normalise(EMAIL, composed).value == composed


@pytest.mark.parametrize(
    "raw",
    [
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "ana@@example.com",
        "ana@b@example.com",
        "ana smith@example.com",
        "ana@exa mple.com",
        "ana@example.",
    ],
)
def test_not_an_email_is_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalise(EMAIL, raw)
    assert caught.value.code == "invalid_identity"
    assert caught.value.context == {"identity_type": "email"}


# --- phone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+44 7700 900123",
        "+447700900123",
        "+44 (0)7700 900123",
        "+44 07700 900123",
        "+44-7700-900-123",
        "+44.7700.900.123",
        " +44 7700 900 123 ",
    ],
)
def test_uk_phone_spellings_become_e164(raw: str) -> None:
    assert normalise(PHONE, raw) == Identity(PHONE, UK)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("07700 900123", "GB"),
        ("07700900123", "GB"),
        ("0044 7700 900123", "GB"),
        ("+44 7700 900123", "US"),
    ],
)
def test_uk_phone_with_a_default_region(raw: str, region: str) -> None:
    assert normalise(PHONE, raw, region).value == UK


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+1 201 555 0123", ""),
        ("+1 (201) 555-0123", ""),
        ("+12015550123", ""),
        ("(201) 555-0123", "US"),
        ("201.555.0123", "US"),
        ("1-201-555-0123", "US"),
        ("001 201 555 0123", "GB"),
    ],
)
def test_us_phone_spellings_become_e164(raw: str, region: str) -> None:
    assert normalise(PHONE, raw, region).value == US


@pytest.mark.parametrize(
    "raw", ["07700 900123", "0044 7700 900123", "(201) 555-0123", "2015550123"]
)
def test_a_national_number_needs_a_default_region(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalise(PHONE, raw)
    assert caught.value.context == {"identity_type": "phone"}
    assert "country code" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+44 12", ""),
        ("+1 555", ""),
        ("+44 7700 900123 4567 89", ""),
        ("+999 1234 5678", ""),
        ("+", ""),
        ("+abc", ""),
        ("12", "GB"),
        ("not a number", "GB"),
    ],
)
def test_impossible_phone_numbers_are_refused(raw: str, region: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalise(PHONE, raw, region)
    assert caught.value.code == "invalid_identity"


# --- every type -----------------------------------------------------------------------------


@pytest.mark.parametrize("type_", list(IdentityType))
@pytest.mark.parametrize("raw", ["", " ", "\t\n ", "\u3000"])
def test_empty_is_refused(type_: IdentityType, raw: str) -> None:
    with pytest.raises(InvalidIdentity, match="empty"):
        normalise(type_, raw)


@pytest.mark.parametrize("type_", list(IdentityType))
@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused(type_: IdentityType, char: str) -> None:
    value = {EMAIL: f"a{char}na@example.com", PHONE: f"+44 7700{char}900123"}.get(
        type_, f"CUST{char}0001"
    )
    with pytest.raises(InvalidIdentity, match="control characters"):
        normalise(type_, value)


def test_length_limit() -> None:
    at_limit = "c" * MAX_LENGTH
    assert normalise(CUSTOMER, at_limit).value == at_limit
    with pytest.raises(InvalidIdentity, match="longer than"):
        normalise(CUSTOMER, at_limit + "c")
    email = "a" * (MAX_LENGTH - len("@example.com") + 1) + "@example.com"
    with pytest.raises(InvalidIdentity, match="longer than"):
        normalise(EMAIL, email)


@pytest.mark.parametrize(
    "type_", [CUSTOMER, IdentityType.DEVICE_ID, IdentityType.COOKIE_ID, IdentityType.ACCOUNT_ID]
)
def test_other_identifiers_are_trimmed_and_kept_as_given(type_: IdentityType) -> None:
    assert normalise(type_, "  CUST-000123 ").value == "CUST-000123"
    assert normalise(type_, "CUST-000123").value != normalise(type_, "cust-000123").value


@pytest.mark.parametrize("raw", ["", "passport", "Email", "EMAIL", "e-mail", "email "])
def test_unknown_identity_type(raw: str) -> None:
    with pytest.raises(UnknownIdentityType) as caught:
        identity_type(raw)
    assert caught.value.code == "unknown_identity_type"
    assert caught.value.context == {"identity_type": raw}


@pytest.mark.parametrize("type_", list(IdentityType))
def test_known_identity_types(type_: IdentityType) -> None:
    assert identity_type(type_.value) is type_


# --- idempotence ----------------------------------------------------------------------------

whitespace = st.sampled_from(["", " ", "  ", "\t", "\n", "\u00a0"])


@st.composite
def spelled_emails(draw: st.DrawFn) -> str:
    address = draw(st.emails())
    flips = draw(st.lists(st.booleans(), min_size=len(address), max_size=len(address)))
    mixed = "".join(c.upper() if f else c for c, f in zip(address, flips, strict=True))
    return draw(whitespace) + mixed + draw(whitespace)


@given(spelled_emails())
@example("Ana@Example.com ")
def test_email_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalise(EMAIL, raw)
    except InvalidIdentity:
        reject()  # st.emails() can draw addresses longer than MAX_LENGTH
    assert normalise(EMAIL, once.value) == once
    assert normalise(EMAIL, raw.upper()) == once


@given(st.text(min_size=1, max_size=MAX_LENGTH + 10))
@example("  CUST-000123 ")
@example("e\u0301")
def test_customer_id_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalise(CUSTOMER, raw)
    except InvalidIdentity:
        reject()  # control characters, or only whitespace
    assert normalise(CUSTOMER, once.value) == once


def accepted(type_: IdentityType, raw: str) -> Identity | None:
    try:
        return normalise(type_, raw)
    except InvalidIdentity:
        return None


def test_an_email_that_grows_when_lower_cased_stays_normalisable() -> None:
    """'İ'.lower() is two code points: the length limit applies to the normalised value."""
    raw = "a" * 240 + "\u0130" * 3 + "@example.com"  # 255 characters, 258 once lower-cased
    once = accepted(EMAIL, raw)
    # Refusing it is fine; accepting it and then refusing its own output is not.
    assert once is None or accepted(EMAIL, once.value) == once


@pytest.mark.parametrize("char", ["\u200b", "\u200d", "\ufeff", "\u2060"])
def test_invisible_format_characters_are_refused(char: str) -> None:
    """A zero-width character would make `ana@example.com` a second, different person."""
    with pytest.raises(InvalidIdentity, match="invisible"):
        normalise(EMAIL, f"ana{char}@example.com")
