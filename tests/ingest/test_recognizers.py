"""The redaction oracle's checks (tests/native/redact_reference.py): each check that confirms or
rejects a candidate (Luhn, ISO 13616 mod-97, SSA and HMRC rules, addresses, phone number
metadata), as the core's checks must do them too. No I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.native import redact_reference as r
from tests.native.redact_reference import IBAN_LENGTHS, iban_ok, luhn_ok

IBANS = [
    "GB82WEST12345698765432",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "NO9386011117947",
]


def whole(check: r.Validator, text: str, start: int = 0) -> tuple[int, int] | None:
    return check(text, start, len(text))


def test_luhn() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


def luhn_digit(body: str) -> str:
    return next(d for d in "0123456789" if luhn_ok(body + d))


@given(st.text("0123456789", min_size=1, max_size=18), st.data())
def test_luhn_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    number = body + luhn_digit(body)
    assert luhn_ok(number)
    i = data.draw(st.integers(0, len(number) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    assert not luhn_ok(number[:i] + other + number[i + 1 :])


def test_iban_lengths_cover_the_countries_of_the_corpus() -> None:
    assert {"GB": 22, "DE": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "PL": 28}.items() <= (
        IBAN_LENGTHS.items()
    )
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("GB82WEST1234569876543Ä")


@given(st.sampled_from(IBANS), st.data())
def test_mod_97_catches_every_single_character_error(iban: str, data: st.DataObject) -> None:
    assert iban_ok(iban)
    i = data.draw(st.integers(2, len(iban) - 1))
    alphabet = "0123456789" if iban[i].isdigit() else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    other = data.draw(st.sampled_from([c for c in alphabet if c != iban[i]]))
    assert not iban_ok(iban[:i] + other + iban[i + 1 :])


def test_an_iban_needs_its_country_length() -> None:
    assert not iban_ok("GB82WEST1234569876543")
    assert not iban_ok("XX82WEST12345698765432")


def test_an_iban_candidate_is_cut_at_its_country_length() -> None:
    text = "BE68 5390 0754 7034 with"
    # The check digits start at 2; the candidate ran on into the next word.
    assert r.iban(text, 2, len(text)) == (0, 19)
    assert r.iban("BE68 5390 0754 7035", 2, 19) is None


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("4111111111111111", True),  # Visa 16
        ("4222222222222", True),  # Visa 13
        ("378282246310005", True),  # Amex 15
        ("5555555555554444", True),  # Mastercard 16
        ("2223003122003222", True),  # Mastercard 2-series
        ("4111111111111", False),  # Visa 13, Luhn fails
        ("37828224631000", False),  # Amex is 15
        ("5555555555554444000", False),  # Mastercard is 16
        ("1234567812345670", False),  # no issuer starts with 1
        ("411111111111", False),  # too short
    ],
)
def test_card(digits: str, ok: bool) -> None:
    assert (whole(r.card, digits) is not None) is ok
    spaced = " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    assert (whole(r.card, spaced) is not None) is ok


@pytest.mark.parametrize(
    ("text", "start", "found"),
    [
        ("123-45-6789", 0, True),
        ("000-12-3456", 0, False),
        ("666-12-3456", 0, False),
        ("912-12-3456", 0, False),
        ("123-00-4567", 0, False),
        ("123-45-0000", 0, False),
        ("123456789", 0, False),  # nine bare digits, no word saying so
        ("SSN 123456789", 4, True),
        ("social: 123456789", 8, True),
    ],
)
def test_ssn(text: str, start: int, found: bool) -> None:
    assert (r.ssn(text, start, len(text)) is not None) is found


@pytest.mark.parametrize(
    ("text", "start", "found"),
    [
        ("AB123456C", 2, True),
        ("AB 12 34 56 C", 3, True),
        ("DA123456C", 2, False),
        ("AO123456C", 2, False),
        ("GB123456C", 2, False),
        ("ZZ123456C", 2, False),
    ],
)
def test_nino(text: str, start: int, found: bool) -> None:
    assert (r.nino(text, start, len(text)) is not None) is found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ana.lee@example.com", "ana.lee@example.com"),
        (".ana@example.com", "ana@example.com"),
        ("a..@example.com", None),
        ("o'neil@example.co.uk", "o'neil@example.co.uk"),
        ("a..b@example.com", None),
        ("ana.@example.com", None),
        ("@example.com", None),
        ("ana@example.c", None),
        ("ana@example.c0m", None),
        ("ana@-example.com", None),
        ("ana@example-.com", None),
        ("x" * 65 + "@example.com", None),
    ],
)
def test_email(text: str, expected: str | None) -> None:
    at = text.index("@")
    found = r.email(text, at, len(text))
    assert (text[found[0] : found[1]] if found else None) == expected


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("192.0.2.1", True),
        ("255.255.255.255", True),
        ("256.1.1.1", False),
        ("192.0.2.01", False),
        ("1.2.3", False),
    ],
)
def test_ip4(text: str, found: bool) -> None:
    assert (whole(r.ip4, text) is not None) is found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001:db8::1", "2001:db8::1"),
        ("fe80::1:2", "fe80::1:2"),
        ("at 10:30:00", None),
        ("00:1a:2b:3c:4d:5e", None),
        ("::", None),
        ("x2001:db8::1", None),
    ],
)
def test_ip6(text: str, expected: str | None) -> None:
    colon = text.index(":")
    found = r.ip6(text, colon, len(text))
    assert (text[found[0] : found[1]] if found else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07700 900123", "07700 900123"),
        ("020 7946 0958", "020 7946 0958"),
        ("07700 900123 2", "07700 900123"),  # a count after the number is not part of it
        ("13/01/2024", None),
        ("2015550123", None),  # bare digits: an order number as likely
        ("order 2015550123", None),
        ("2024-118734", None),
    ],
)
def test_phone_national(text: str, expected: str | None) -> None:
    start = text.index(next(c for c in text if c.isdigit()))
    found = r.phone_national(text, start, len(text))
    assert (text[found[0] : found[1]] if found else None) == expected


def test_a_phone_word_makes_bare_digits_a_number() -> None:
    text = "call 2015550123"
    assert r.phone_national(text, 5, len(text)) == (5, len(text))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("+44 7700 900123", True),
        ("+44 (0)20 7946 0958", True),
        ("0044 7700 900123", True),
        ("+44 07700 900123", True),
        ("+1 202 555 0143", True),
        ("+999 1234 5678", False),
        ("+44 12", False),
    ],
)
def test_phone_international(text: str, found: bool) -> None:
    assert (whole(r.phone_international, text) is not None) is found


@pytest.mark.parametrize(
    ("text", "i", "starts"),
    [
        ("abc", 0, True),
        (" abc", 1, True),
        ("xabc", 1, False),
        ("_abc", 1, False),
        ("a.bc", 2, False),
        ("/abc", 1, True),
        ("a/bc", 2, False),
        (" /bc", 2, True),
        ("(abc", 1, True),
    ],
)
def test_starts_token(text: str, i: int, starts: bool) -> None:
    assert r.starts_token(text, i) is starts


def test_said_before_looks_32_characters_back_and_stops_at_a_placeholder() -> None:
    words = r._SSN_WORDS
    assert r.said_before("ssn: 1", 5, words)
    far = "ssn" + " " * 40 + "1"
    assert not r.said_before(far, len(far) - 1, words)
    assert not r.said_before("ssn <SSN> 1", 10, words)
