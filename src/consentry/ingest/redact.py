"""The `redact` treatment: find PII in free text in one pass and replace it with placeholders.

E-mail addresses, phone numbers (E.164 anywhere; national formats of GB, US, DE, FR, IT, ES, NL
and PL), payment card numbers, IBANs, IPv4 and IPv6 addresses, US SSNs and UK NI numbers become
`<EMAIL>`, `<PHONE>`, `<CARD>`, `<IBAN>`, `<IP>`, `<US_SSN>` and `<UK_NINO>`. One compiled
alternation finds candidates; each is confirmed by its check in recognizers.py before it
counts. Patterns use bounded or possessive repetition only, so a scan is linear in the length
of the text. consentry.bench.redaction holds it to Presidio on tests/ingest/pii_corpus.jsonl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from consentry.ingest import recognizers as check

__all__ = ["Kind", "Span", "find", "redact"]


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


class Branch(NamedTuple):
    """One kind of candidate: its first character, the rest of its pattern, its check."""

    kind: Kind
    first: str
    rest: str
    check: check.Validator
    # Found at a character inside it ("@", ":", the first digit) and extended leftwards by its
    # check, rather than where a token starts.
    anchored: bool = False


# Every candidate's first character is one of these; the scan skips all others in C, so text
# without digits, "+", "(", "@" or ":" costs next to nothing.
FIRST = r"[0-9+(@:]"
# Candidates start where a token starts: not inside a word or a longer number ("ORD-2024-...",
# "v1.2.3.4", "13/01/2024", but "http://192.0.2.1" is fine), nor right after a placeholder, so
# that redacting twice changes nothing (recognizers.starts_token is the same rule). Checked
# once the first character is consumed, hence the widths of 2 and 3.
START = r"(?<![\w.+@>-].)(?<![\w>]/.)"
# ... and end where the token ends (a number may be followed by a full stop, not by ".5"). "<"
# and ">" count as part of a word: redacted text must not give a candidate more room.
_END = r"(?![\w<]|[./-][0-9<])"
_LETTERS = r"(?<![\w.+@>-])[A-Za-z]{2}"  # two letters that start a token

# In priority order: where two candidates start at the same place, the first that validates
# wins (an IBAN over the digits inside it, a card or an SSN over a phone shape).
BRANCHES: dict[str, Branch] = {
    "EMAIL": Branch(
        Kind.EMAIL, "@", r"[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}(?![\w<-]|\.[\w<-])", check.email, True
    ),
    "IP6": Branch(
        Kind.IP,
        ":",
        r"(?:[0-9A-Fa-f]{0,4}:){1,6}+(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?"
        r"(?![\w<:]|\.[0-9<])",
        check.ip6,
        True,
    ),
    "IBAN": Branch(
        Kind.IBAN,
        "[0-9]",
        rf"(?<={_LETTERS}[0-9])[0-9](?:[ ]?[A-Za-z0-9]{{4}}){{2,8}}+(?:[ ]?[A-Za-z0-9]{{1,3}})?"
        r"(?![\w<])",
        check.iban,
        True,
    ),
    "UK_NINO": Branch(
        Kind.UK_NINO,
        "[0-9]",
        rf"(?:(?<={_LETTERS}[0-9])|(?<={_LETTERS} [0-9]))"
        r"[0-9][ ]?[0-9]{2}[ ]?[0-9]{2}[ ]?[A-Da-d](?![\w<])",
        check.nino,
        True,
    ),
    "CARD": Branch(
        Kind.CARD,
        "[0-9]",
        r"(?:[0-9]{12,18}+|[0-9]{3}(?P<cs>[ -])[0-9]{4}(?P=cs)[0-9]{4}(?P=cs)[0-9]{1,4}"
        r"(?:(?P=cs)[0-9]{1,3})?|[0-9]{3}(?P<ca>[ -])[0-9]{6}(?P=ca)[0-9]{4,5})" + _END,
        check.card,
    ),
    "US_SSN": Branch(
        Kind.US_SSN,
        "[0-9]",
        r"[0-9]{2}(?:(?P<ss>[- ])[0-9]{2}(?P=ss)|[0-9]{2})[0-9]{4}" + _END,
        check.ssn,
    ),
    "IP4": Branch(Kind.IP, "[0-9]", r"[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![\w<]|\.[0-9<])", check.ip4),
    "PHONE_INTL": Branch(
        Kind.PHONE,
        "[+0]",
        # Not "00" right after another group of digits: "2223 0031 2200 3224" is one number.
        r"(?:(?<=\+)|(?<![0-9][ ./-]0)(?<=0)0)[1-9][0-9]{0,2}(?:[ .-]?\(0\))?"
        r"(?:[ ./-]?\(?[0-9]{1,6}+\)?){1,7}" + _END,
        check.phone_international,
    ),
    "PHONE_NAT": Branch(
        Kind.PHONE,
        "[0-9(]",
        r"(?:(?<=\()[0-9]{1,12}+|(?<=[0-9])[0-9]{0,11}+)"
        r"(?:(?:\)[ ]?|\)?[ ./-]| / )[0-9]{1,12}+){0,5}" + _END,
        check.phone_national,
    ),
}


def _pattern(names: tuple[str, ...]) -> str:
    """One alternation over `names` (in priority order), after the shared first character."""
    anchored: list[str] = []
    grouped: list[tuple[str, list[str]]] = []  # branches wanting the same first character
    for name in names:
        branch = BRANCHES[name]
        body = f"(?P<{name}>{branch.rest})"
        if branch.anchored:
            anchored.append(f"(?<={branch.first}){body}")
        elif grouped and grouped[-1][0] == branch.first:
            grouped[-1][1].append(body)
        else:
            grouped.append((branch.first, [body]))
    alternatives = anchored
    if grouped:
        token = "|".join(f"(?<={first})(?:{'|'.join(group)})" for first, group in grouped)
        alternatives.append(f"{START}(?:{token})")
    return f"{FIRST}(?:{'|'.join(alternatives)})"


_ORDER = tuple(BRANCHES)
_CANDIDATES = re.compile(_pattern(_ORDER))
# Each branch alone, to try the later ones where an earlier one matched but did not validate.
_ALONE = {name: re.compile(_pattern((name,))) for name in _ORDER}
_LATER = {name: _ORDER[i + 1 :] for i, name in enumerate(_ORDER)}


def find(text: str) -> list[Span]:
    """The PII spans of `text`, in order and not overlapping. Never raises; linear time."""
    spans: list[Span] = []
    search = _CANDIDATES.search
    pos = 0
    while (m := search(text, pos)) is not None:
        start = m.start()
        name = m.lastgroup or ""
        found = BRANCHES[name].check(text, start, m.end())
        if found is None:
            for later in _LATER[name]:
                alone = _ALONE[later].match(text, start)
                if alone is not None and (found := BRANCHES[later].check(text, start, alone.end())):
                    name = later
                    break
        if found is None:
            pos = start + 1
            continue
        first, end = found
        # An anchored candidate is confirmed after what precedes its anchor was scanned: it
        # takes over any span found there (the phone number that is an e-mail's local part).
        while spans and spans[-1].end > first:
            first = min(first, spans.pop().start)
        spans.append(Span(first, end, BRANCHES[name].kind))
        pos = end
    return spans


def redact(text: str) -> str:
    """`text` with each PII span replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...)."""
    spans = find(text)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(f"<{span.kind}>")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)
