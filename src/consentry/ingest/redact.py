"""The `redact` treatment: find PII in free text in one pass and replace it with placeholders.

E-mail addresses, phone numbers (E.164 anywhere; national formats of GB, US, DE, FR, IT, ES, NL
and PL), payment card numbers, IBANs, IPv4 and IPv6 addresses, US SSNs and UK NI numbers become
`<EMAIL>`, `<PHONE>`, `<CARD>`, `<IBAN>`, `<IP>`, `<US_SSN>` and `<UK_NINO>`. One compiled
alternation finds candidates; each is confirmed by its own check (recognizers.py) before it
counts. bench/redaction.py holds it to Presidio on tests/ingest/pii_corpus.jsonl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consentry.ingest.recognizers import (
    ANCHORED,
    BRANCH_KIND,
    BRANCHES,
    FIRST,
    START,
    VALIDATORS,
    Kind,
)

__all__ = ["Kind", "Span", "find", "redact"]


@dataclass(frozen=True, slots=True)
class Span:
    """PII of `kind` at text[start:end]."""

    start: int
    end: int
    kind: Kind


def _pattern(names: tuple[str, ...]) -> str:
    """One alternation over `names` (in priority order), after the shared first character."""
    anchored, tokens = [], []
    for name in names:
        first, rest = BRANCHES[name]
        (anchored if name in ANCHORED else tokens).append((first, f"(?P<{name}>{rest})"))
    # Branches that want the same first character share one check of it.
    grouped: list[tuple[str, list[str]]] = []
    for first, branch in tokens:
        if grouped and grouped[-1][0] == first:
            grouped[-1][1].append(branch)
        else:
            grouped.append((first, [branch]))
    alternatives = [f"(?<={first}){branch}" for first, branch in anchored]
    if grouped:
        token = "|".join(f"(?<={first})(?:{'|'.join(group)})" for first, group in grouped)
        alternatives.append(f"{START}(?:{token})")
    return f"{FIRST}(?:{'|'.join(alternatives)})"


_ORDER = tuple(BRANCHES)
_KIND = {name: BRANCH_KIND.get(name) or Kind(name) for name in _ORDER}
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
        found = VALIDATORS[name](text, start, m.end())
        if found is None:
            for later in _LATER[name]:
                alone = _ALONE[later].match(text, start)
                if alone is not None and (found := VALIDATORS[later](text, start, alone.end())):
                    name = later
                    break
        if found is None:
            pos = start + 1
            continue
        first, end = found
        # An e-mail or IPv6 address is confirmed at its "@" or ":", after what precedes it was
        # scanned: it takes over any span found in its first part.
        while spans and spans[-1].end > first:
            first = min(first, spans.pop().start)
        spans.append(Span(first, end, _KIND[name]))
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
