"""ingest/redact.py against pii_corpus.jsonl: recall and precision per kind, exact spans.

The corpus is written by make_corpus.py (seeded); `consentry bench --section redaction`
reports the same figures next to Presidio's.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from pathlib import Path

import pytest

from consentry.ingest.redact import Kind, find
from tests.ingest import make_corpus

CORPUS = Path(__file__).with_name("pii_corpus.jsonl")
DOCUMENTATION = [  # RFC 5737 and RFC 3849
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
LANGUAGES = (
    "Bestellung",
    "commande",
    "pedido",
    "ordine",
    "bestelling",
    "zamówienie",
)  # a word each

Label = tuple[int, int, str]


def load() -> list[tuple[str, set[Label]]]:
    messages = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        labels = {(s["start"], s["end"], s["kind"]) for s in record["spans"]}
        messages.append((record["text"], labels))
    return messages


def scores() -> dict[str, tuple[int, int, int]]:
    """Per kind: (true positives, false positives, false negatives), spans compared exactly."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for text, labels in load():
        found = {(s.start, s.end, s.kind.value) for s in find(text)}
        tp.update(kind for *_, kind in found & labels)
        fp.update(kind for *_, kind in found - labels)
        fn.update(kind for *_, kind in labels - found)
    return {kind.value: (tp[kind], fp[kind], fn[kind]) for kind in Kind}


def test_the_corpus_file_is_what_the_generator_writes() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == make_corpus.corpus()


def test_the_corpus_is_large_and_varied() -> None:
    messages = load()
    assert len(messages) >= 300
    per_kind = Counter(kind for _, labels in messages for *_, kind in labels)
    assert set(per_kind) == {kind.value for kind in Kind}
    assert min(per_kind.values()) >= 30
    assert sum(1 for _, labels in messages if not labels) >= 100
    for word in LANGUAGES:
        assert sum(word.lower() in text.lower() for text, _ in messages) >= 10, word


def test_labels_are_exact_offsets_of_fictional_values() -> None:
    for text, labels in load():
        for start, end, kind in labels:
            value = text[start:end]
            assert value, (text, kind)
            assert value == value.strip(), (text, kind)
            if kind == "EMAIL":
                assert (
                    value.lower()
                    .rsplit("@", 1)[1]
                    .endswith(("example.com", "example.org", "example.net"))
                )
            if kind == "IP":
                address = ipaddress.ip_address(value)
                assert any(address in net for net in DOCUMENTATION), value


@pytest.mark.parametrize("kind", [kind.value for kind in Kind])
def test_recall_and_precision_per_kind(kind: str) -> None:
    tp, fp, fn = scores()[kind]
    recall = tp / (tp + fn)
    precision = tp / (tp + fp)
    assert recall >= 0.95, f"{kind}: recall {recall:.3f} ({fn} missed)"
    assert precision >= 0.95, f"{kind}: precision {precision:.3f} ({fp} wrong)"
