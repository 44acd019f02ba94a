"""The `redact` treatment: find PII in free text in one pass and replace it with placeholders.

E-mail addresses, phone numbers (E.164 anywhere; national formats of GB, US, DE, FR, IT, ES, NL
and PL), payment card numbers, IBANs, IPv4 and IPv6 addresses, US SSNs and UK NI numbers become
`<EMAIL>`, `<PHONE>`, `<CARD>`, `<IBAN>`, `<IP>`, `<US_SSN>` and `<UK_NINO>`. The recognizers
run in the native core (core/src/redact): one linear scan finds candidates, each confirmed by
its check (Luhn, ISO 13616 mod-97, the address grammars, the SSA and HMRC rules,
libphonenumber's metadata) before it counts. This module is their Python face: spans are in
code points, as Python indexes a str. consentry.bench.redaction holds them to Presidio on
tests/ingest/pii_corpus.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consentry import native

__all__ = ["Kind", "Span", "find", "redact", "redact_many"]


class Kind(StrEnum):
    """What a span is; its placeholder in redacted text is `<KIND>`."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    IBAN = "IBAN"
    IP = "IP"
    US_SSN = "US_SSN"
    UK_NINO = "UK_NINO"


@dataclass(frozen=True, slots=True)
class Span:
    """PII of `kind` at text[start:end]."""

    start: int
    end: int
    kind: Kind


def find(text: str) -> list[Span]:
    """The PII spans of `text`, in order and not overlapping. Never raises; linear time."""
    return [Span(start, end, Kind(kind)) for start, end, kind in native.redact_find(text)]


def redact(text: str) -> str:
    """`text` with each PII span replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...); the
    same object when it holds none."""
    return native.redact(text)


def redact_many(texts: list[str]) -> list[str]:
    """Each text redacted, in order: one call to the core for the batch."""
    return native.redact_many(texts)
