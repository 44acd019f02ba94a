"""ingest/redact.py: each kind of PII found and replaced, near misses left alone, and the
properties every input keeps (never raises, idempotent, linear time). No I/O."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentry.ingest.redact import Kind, Span, find, redact


def kinds(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) of each span, for readable assertions."""
    return [(span.kind.value, text[span.start : span.end]) for span in find(text)]


def only(text: str, kind: str) -> None:
    """`text` is one PII value of `kind`, found whole, inside a sentence as well as alone."""
    assert kinds(text) == [(kind, text)]
    sentence = f"Hi, it is {text}, thanks."
    assert kinds(sentence) == [(kind, text)]
    assert redact(sentence) == f"Hi, it is <{kind}>, thanks."


def nothing(text: str) -> None:
    assert find(text) == [], kinds(text)
    assert redact(text) == text


# --- the API ------------------------------------------------------------------------------


def test_span_is_a_frozen_value() -> None:
    span = find("mail ana@example.com")[0]
    assert span == Span(5, 20, Kind.EMAIL)
    with pytest.raises(AttributeError):
        span.start = 0  # type: ignore[misc]


def test_placeholders_name_the_kind() -> None:
    text = (
        "ana@example.com +44 7700 900123 4111 1111 1111 1111 GB82 WEST 1234 5698 7654 32 "
        "192.0.2.1 123-45-6789 AB 12 34 56 C"
    )
    assert redact(text) == "<EMAIL> <PHONE> <CARD> <IBAN> <IP> <US_SSN> <UK_NINO>"
    assert {span.kind for span in find(text)} == set(Kind)


def test_text_without_pii_is_returned_as_is() -> None:
    text = "Thanks for your help today, the parcel arrived on time."
    assert redact(text) is text
    assert redact("") == ""


# --- e-mail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "ana@example.com",
        "Ana.Lopez@Example.com",
        "j.o.smith+orders@mail.example.org",
        "o'brien@example.net",
        "first_last-99@sub.example.co.uk",
        "07700900123@example.com",
        "zoë@example.de",
    ],
)
def test_email(email: str) -> None:
    only(email, "EMAIL")


def test_email_quoted_or_bracketed_keeps_its_punctuation() -> None:
    assert kinds("<ana@example.com>") == [("EMAIL", "ana@example.com")]
    assert kinds("'ana@example.com'") == [("EMAIL", "ana@example.com")]
    assert kinds("mailto:ana@example.com.") == [("EMAIL", "ana@example.com")]


@pytest.mark.parametrize(
    "text",
    [
        "ana@example",
        "ana@@example.com",
        "@example.com",
        "ana.@example.com",
        "ana..lopez@example.com",
        "ana@-example.com",
        "ana@example.c0m",
        "ana@192.0.2.1x",
        "price @ 4.99",
        "follow @consentry on social",
        "a" * 65 + "@example.com",
    ],
)
def test_not_an_email(text: str) -> None:
    assert "EMAIL" not in {kind for kind, _ in kinds(text)}


# --- phone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        # E.164 and international spellings
        "+44 7700 900123",
        "+447700900123",
        "+44 (0)20 7946 0018",
        "+44 07700 900123",
        "0044 7700 900123",
        "+1 (201) 555-0123",
        "+1-212-555-0199",
        "+49 30 23125123",
        "+33 6 39 98 12 34",
        "+39 02 8901 2345",
        "+34 612 345 678",
        "+31 20 123 4567",
        "+48 512 345 678",
        "+353 1 555 0123",
        # GB
        "07700 900123",
        "07700900123",
        "07700 900 123",
        "020 7946 0018",
        "(020) 7946 0018",
        "0161 496 0123",
        # US
        "(201) 555-0123",
        "(201)555-0123",
        "201-555-0123",
        "201.555.0123",
        "1-800-555-0199",
        # DE, FR, IT, ES, NL, PL
        "030 23125123",
        "030/23125123",
        "0151 2345 6789",
        "01 99 00 12 34",
        "06.39.98.12.34",
        "02 8901 2345",
        "347 123 4567",
        "612 345 678",
        "91 123 45 67",
        "020 123 4567",
        "06-12345678",
        "512 345 678",
        "22 123 45 67",
    ],
)
def test_phone(phone: str) -> None:
    only(phone, "PHONE")


def test_bare_digits_without_a_trunk_prefix_need_a_phone_word() -> None:
    assert kinds("call me on 2015550123") == [("PHONE", "2015550123")]
    assert kinds("Handynummer 3471234567") == [("PHONE", "3471234567")]
    nothing("order 2015550123 shipped")


def test_a_phone_number_followed_by_a_count_is_cut_to_the_number() -> None:
    assert kinds("rang 07700 900123 3 times") == [("PHONE", "07700 900123")]


@pytest.mark.parametrize(
    "text",
    [
        "order 48213",
        "Order ORD-2024-118734",
        "INV-2024-0001234",
        "on 13/01/2024",
        "on 2024-01-13 at 10:32:05",
        "am 13.01.2024 um 14.30",
        "total £1,299.99 or €1.299,00",
        "v3.14.2 build 20240113",
        "ref 4829 1734",
        "sort code 20-00-00 account 12345678",
        "ISBN 978-3-16-148410-0",
        "+5 points",
        "555-0123",
        "12 34 56 78 90 12",
        "tracking 1Z999AA10123456784",
        "postcode SW1A 1AA, 10115 Berlin",
    ],
)
def test_not_a_phone(text: str) -> None:
    nothing(text)


# --- payment cards ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111111111111111",
        "4111-1111-1111-1111",
        "5555 5555 5555 4444",
        "2223 0031 2200 3222",
        "3782 822463 10005",
        "378282246310005",
        "6011 1111 1111 1117",
        "3530 1113 3330 0000",
        "4222222222222",
        "4000 0566 5566 5556",
    ],
)
def test_card(card: str) -> None:
    only(card, "CARD")


def test_a_card_wins_over_a_phone_and_keeps_its_expiry_apart() -> None:
    assert kinds("card 4111 1111 1111 1111 12/26") == [("CARD", "4111 1111 1111 1111")]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn
        "4111111111111112",
        "5555 5555 5555 4440",
        "3782 822463 10006",
        "1234 5678 9012 3452",  # passes Luhn, no issuer starts with 1
        "41111111111111",  # Visa has 13, 16 or 19 digits
        "9400 1000 0000 0000 0000 00",  # a parcel number: no issuer starts with 9
    ],
)
def test_not_a_card(text: str) -> None:
    assert "CARD" not in {kind for kind, _ in kinds(text)}


# --- IBAN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "FR14 2004 1010 0505 0001 3M02 606",
        "ES91 2100 0418 4502 0005 1332",
        "IT60 X054 2811 1010 0000 0123 456",
        "NL91 ABNA 0417 1643 00",
        "PL61 1090 1014 0000 0712 1981 2874",
        "BE68 5390 0754 7034",
        "NO93 8601 1117 947",
    ],
)
def test_iban(iban: str) -> None:
    only(iban, "IBAN")


def test_an_iban_wins_over_the_digits_inside_it() -> None:
    assert redact("IBAN: DE89 3704 0044 0532 0130 00.") == "IBAN: <IBAN>."


@pytest.mark.parametrize(
    "text",
    [
        "GB83 WEST 1234 5698 7654 32",  # check digits
        "DE89 3704 0044 0532 0130 01",
        "DE89 3704 0044 0532 0130",  # too short for DE
        "XX82 WEST 1234 5698 7654 32",  # no such country
        "GB82 WEST 1234 5698 7654 3",
    ],
)
def test_not_an_iban(text: str) -> None:
    assert "IBAN" not in {kind for kind, _ in kinds(text)}


# --- IP addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "192.0.2.1",
        "198.51.100.23",
        "203.0.113.254",
        "2001:db8::1",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "2001:db8:85a3::8a2e:370:7334",
        "fe80::1",
        "::ffff:192.0.2.1",
        "::1",
    ],
)
def test_ip(ip: str) -> None:
    only(ip, "IP")


def test_ip_with_a_port_or_in_a_url() -> None:
    assert kinds("from 203.0.113.7:8443") == [("IP", "203.0.113.7")]
    assert kinds("http://192.0.2.1/login") == [("IP", "192.0.2.1")]
    assert kinds("[2001:db8::1]:443") == [("IP", "2001:db8::1")]


@pytest.mark.parametrize(
    "text",
    [
        "999.1.1.1",
        "256.100.50.25",
        "192.0.2",
        "v1.2.3.4",
        "1.2.3.4.5",
        "10.0.19045.2965",
        "01.02.03.04",
        "at 10:32:05",
        "MAC 00:1A:2B:3C:4D:5E",
        "ratio 1::2::3",
        "C++::operator",
    ],
)
def test_not_an_ip(text: str) -> None:
    assert "IP" not in {kind for kind, _ in kinds(text)}


# --- US SSN and UK NI number --------------------------------------------------------------


@pytest.mark.parametrize("ssn", ["123-45-6789", "078-05-1121", "665-12-3456", "123 45 6789"])
def test_ssn(ssn: str) -> None:
    only(ssn, "US_SSN")


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "987-65-4321",
        "123-00-4567",
        "123-45-0000",
        "123-45-678",
        "123-45-6789-01",
        "123-45 6789",
    ],
)
def test_not_an_ssn(text: str) -> None:
    assert "US_SSN" not in {kind for kind, _ in kinds(text)}


@pytest.mark.parametrize("nino", ["AB 12 34 56 C", "AB123456C", "JG 10 37 59 A", "ZX 98 76 54 D"])
def test_nino(nino: str) -> None:
    only(nino, "UK_NINO")


@pytest.mark.parametrize(
    "text",
    [
        "QQ 12 34 56 C",  # Q is never a first letter
        "DA 12 34 56 C",
        "AO 12 34 56 C",  # O is never a second letter
        "GB 12 34 56 A",  # never issued
        "NK123456A",
        "AB 12 34 56 E",  # suffix A-D only
        "AB 12 34 56",
        "XAB123456C",
    ],
)
def test_not_a_nino(text: str) -> None:
    assert "UK_NINO" not in {kind for kind, _ in kinds(text)}


# --- properties ---------------------------------------------------------------------------

PII = [
    "ana@example.com",
    "+44 7700 900123",
    "07700 900123",
    "(201) 555-0123",
    "4111 1111 1111 1111",
    "378282246310005",
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "192.0.2.1",
    "2001:db8::1",
    "123-45-6789",
    "AB 12 34 56 C",
]
NEAR = ["13/01/2024", "10:32", "£12.99", "ORD-2024-1", "v1.2.3", "999.1.1.1", "000-12-3456"]
PIECES = st.one_of(
    st.sampled_from(PII),
    st.sampled_from(NEAR),
    st.sampled_from([" ", ", ", ". ", "\n", "call ", "(", ")", "<", ">", "@", ":", "/", "-", "+"]),
    st.text(alphabet="0123456789 +-()./:@<>_aAbBcCeEfFxX'", max_size=12),
    st.text(max_size=8),
)
TEXTS = st.one_of(st.text(), st.lists(PIECES, max_size=12).map("".join))


@given(TEXTS)
@settings(max_examples=600)
@example("ana@example.com4111111111111111")
@example("07700900123@example.com")
@example("<PHONE>@example.com")
@example("0@0.aa:1::1")
@example("0@0.AA..0@0.AA")
def test_redact_is_total_and_idempotent_and_leaves_nothing_to_find(text: str) -> None:
    redacted = redact(text)
    assert find(redacted) == []
    assert redact(redacted) == redacted


@given(st.lists(st.sampled_from(PII), min_size=1, max_size=6), st.sampled_from([" ", ", ", "\n"]))
def test_pii_between_separators_never_survives(values: list[str], sep: str) -> None:
    text = sep.join(values)
    redacted = redact(text)
    for value in values:
        assert value not in redacted
    assert len(find(text)) == len(values)


FULL_WIDTH = "07700 900123".translate({48 + i: 0xFF10 + i for i in range(10)})
ARABIC_INDIC = "07700 900123".translate({48 + i: 0x0660 + i for i in range(10)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ud800 07700 900123 \udfff", "\ud800 <PHONE> \udfff"),  # lone surrogates
        ("\x00ana@example.com\x00", "\x00<EMAIL>\x00"),
        # Full-width and Arabic-Indic digits are not dialled: left as they are.
        *((text, text) for text in (FULL_WIDTH, ARABIC_INDIC)),
        ("İstanbul: +90 212 555 0123", "İstanbul: <PHONE>"),
    ],
)
def test_any_string_is_handled(text: str, expected: str) -> None:
    assert redact(text) == expected


@given(st.text())
def test_spans_are_ordered_and_within_the_text(text: str) -> None:
    spans = find(text)
    ends = [0] + [span.end for span in spans]
    for span, previous_end in zip(spans, ends, strict=False):
        assert previous_end <= span.start < span.end <= len(text)


@pytest.mark.parametrize(
    "unit",
    [
        "1",
        "1 ",
        "0",
        "00",
        "12-",
        "@",
        "a@",
        "1@",
        "@a.",
        ":",
        "1:",
        "a:",
        "+1",
        "(1) ",
        "AB1 ",
        "1.",
    ],
)
def test_a_megabyte_of_adversarial_text_is_scanned_in_linear_time(unit: str) -> None:
    text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    started = time.perf_counter()
    redact(text)
    assert time.perf_counter() - started < 5.0
