"""The core's redaction (core/src/redact) against the Python recognizers it replaced
(tests/native/redact_reference.py): the same spans for any text, code points as offsets; and
its batch binding (`redact_many`, one call per batch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentry import native
from consentry.ingest import redact as ours
from consentry.ingest.treatments import Redact
from tests.native import redact_reference as oracle

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import redact_tables  # noqa: E402

CORPUS = ROOT / "tests" / "ingest" / "pii_corpus.jsonl"

PII = [
    "ana@example.com",
    "o'brien@example.net",
    "zoë@example.de",
    "+44 7700 900123",
    "+44 (0)20 7946 0018",
    "0044 7700 900123",
    "+1 (201) 555-0123",
    "+39 02 8901 2345",
    "07700 900123",
    "(201) 555-0123",
    "030/23125123",
    "06.39.98.12.34",
    "347 123 4567",
    "612 345 678",
    "22 123 45 67",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",
    "378282246310005",
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "NO93 8601 1117 947",
    "192.0.2.1",
    "2001:db8::1",
    "::ffff:192.0.2.1",
    "123-45-6789",
    "AB 12 34 56 C",
    "JG103759A",
]
NEAR = [
    "13/01/2024",
    "10:32:05",
    "£12.99",
    "ORD-2024-1",
    "v1.2.3.4",
    "999.1.1.1",
    "000-12-3456",
    "00:1A:2B:3C:4D:5E",
    "GB83 WEST 1234",
    "2015550123",
    "123456789",
]
WORDS = ["call ", "ssn ", "Handy ", "móvil ", "SOCIAL ", "\u017fsn ", "KOMÓRK ", "tel:", "<PHONE>"]
# Characters on which Python's and a naive Rust reading of "letter" or "digit" differ.
UNICODE = "éßÉÓİ\u0131\u017f\u212a²½٣\uff10\u0301Ⓐ五\u00a0😀\ufffd_"
PIECES = st.one_of(
    st.sampled_from(PII),
    st.sampled_from(NEAR),
    st.sampled_from(WORDS),
    st.sampled_from([" ", ", ", ". ", "\n", "(", ")", "(0)", "<", ">", "@", ":", "::", "/", " / "]),
    st.text(alphabet="0123456789 +-()./:@<>_aAbBcCdDeEfFgGxXzZ'%", max_size=14),
    st.text(alphabet="0123456789 " + UNICODE, max_size=6),
    st.text(max_size=6),
)
TEXTS = st.one_of(st.text(), st.lists(PIECES, max_size=14).map("".join))


def spans(found: list[ours.Span]) -> list[tuple[int, int, str]]:
    return [(s.start, s.end, s.kind.value) for s in found]


def same(text: str) -> None:
    expected = spans(oracle.find(text))
    assert spans(ours.find(text)) == expected, text
    assert ours.redact(text) == oracle.redact(text), text


@given(TEXTS)
@settings(max_examples=3000, deadline=None)
@example("ana@example.com4111111111111111")
@example("07700900123@example.com")
@example("+44 7700 900123 (0)a")
@example("0161 496 0123abc")
@example("zoë, İstanbul: +90 212 555 0123")
@example("\u017fsn 123456789 call 2015550123")
@example("ⓐ@example.com ²1@example.com")
def test_the_core_finds_what_the_python_recognizers_found(text: str) -> None:
    same(text)


@given(st.lists(st.sampled_from(PII + NEAR), min_size=1, max_size=5), st.data())
@settings(max_examples=500, deadline=None)
def test_pii_joined_by_any_separator(values: list[str], data: st.DataObject) -> None:
    seps = st.sampled_from([" ", "", "-", ".", "/", ":", "@", "(", ")", "+", "a", "5", "é", "<"])
    text = values[0] + "".join(data.draw(seps) + v for v in values[1:])
    same(text)


def test_every_corpus_message() -> None:
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        same(json.loads(line)["text"])


def test_redact_many_is_redact_of_each_in_order() -> None:
    texts = ["no pii here", "mail ana@example.com", "", "call +44 7700 900123", "12:30"]
    assert native.redact_many(texts) == [oracle.redact(t) for t in texts]
    assert native.redact_many([]) == []


def test_a_value_without_pii_comes_back_as_the_same_object() -> None:
    text = "nothing to see, order 48213"
    assert native.redact_many([text])[0] is text
    assert ours.redact(text) is text


def test_lone_surrogates_are_kept_around_what_is_redacted() -> None:
    text = "\ud800 07700 900123 \udfff ana@example.com"
    assert native.redact_many([text]) == ["\ud800 <PHONE> \udfff <EMAIL>"]
    assert spans(ours.find(text)) == spans(oracle.find(text))


def test_only_str_is_accepted() -> None:
    with pytest.raises(TypeError):
        native.redact_many([b"ana@example.com"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        native.redact_many(["ok", None])  # type: ignore[list-item]


def test_the_treatment_redacts_a_batch_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = native.redact_many

    def counted(values: list[str]) -> list[str]:
        calls.append(values)
        return real(values)

    monkeypatch.setattr(native, "redact_many", counted)
    out = Redact().many(["f"] * 3, ["a@example.com", "none", "+44 7700 900123"])
    assert out == ["<EMAIL>", "none", "<PHONE>"]
    assert len(calls) == 1


def test_the_generated_tables_are_current() -> None:
    """core/src/redact/tables.rs is what scripts/redact_tables.py writes from this Python and
    the pinned phonenumbers (run it after upgrading either)."""
    assert redact_tables.TABLES.read_text(encoding="utf-8") == redact_tables.render()
