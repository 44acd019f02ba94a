"""Free-text redaction: our recognizer set against Presidio's pattern recognizers, side by side,
over the labelled corpus tests/ingest/pii_corpus.jsonl: messages per second, and recall and
precision overall and per kind (spans compared exactly). Presidio is a development extra
(`.[presidio]`, part of `.[dev]`), run offline (a blank spaCy model written to a temporary
directory, tldextract on its bundled suffix list); where it is not installed only our figures
are given. `consentry bench --section redaction` reports the figures (figures());
`python -m consentry.bench.redaction [seconds]` prints them as a table, with recall and
precision by overlap as well.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consentry.ingest.redact import Kind, find, redact_many

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "ingest" / "pii_corpus.jsonl"
PRESIDIO_KINDS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "US_SSN": "US_SSN",
    "UK_NINO": "UK_NINO",
}

Label = tuple[int, int, str]
Finder = Callable[[str], set[Label]]


def load() -> list[tuple[str, set[Label]]]:
    messages = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        messages.append(
            (record["text"], {(s["start"], s["end"], s["kind"]) for s in record["spans"]})
        )
    return messages


def ours(text: str) -> set[Label]:
    return {(s.start, s.end, s.kind.value) for s in find(text)}


def presidio() -> Finder | None:
    """Presidio's AnalyzerEngine with pattern recognizers only, offline; None if not installed."""
    try:
        import spacy  # noqa: PLC0415
        import tldextract  # noqa: PLC0415
        from presidio_analyzer import AnalyzerEngine  # noqa: PLC0415
        from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: PLC0415
        from presidio_analyzer.predefined_recognizers import UkNinoRecognizer  # noqa: PLC0415
    except ImportError:
        return None
    # It warns, once per engine, of every recognizer for a language other than English.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    # The e-mail recognizer asks tldextract, which would download the public suffix list.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    # The default engine loads en_core_web_lg (a download); a blank model has no NER at all.
    with tempfile.TemporaryDirectory(prefix="presidio-blank-") as directory:
        model = Path(directory) / "en"
        spacy.blank("en").to_disk(model)
        models = [{"lang_code": "en", "model_name": str(model)}]
        config = {"nlp_engine_name": "spacy", "models": models}
        nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
        engine = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine.registry.remove_recognizer("SpacyRecognizer")
    engine.registry.add_recognizer(UkNinoRecognizer())  # shipped, but off by default
    entities = list(PRESIDIO_KINDS)

    def analyse(text: str) -> set[Label]:
        results: list[Any] = engine.analyze(text=text, language="en", entities=entities)
        # Presidio may return overlapping results; keep the best-scored, as its anonymizer does.
        kept: list[Any] = []
        for r in sorted(results, key=lambda r: (-r.score, r.start - r.end)):
            if all(r.end <= k.start or k.end <= r.start for k in kept):
                kept.append(r)
        return {(r.start, r.end, PRESIDIO_KINDS[r.entity_type]) for r in kept}

    return analyse


Batch = Callable[[list[str]], object]


def each(finder: Callable[[str], object]) -> Batch:
    """A batch done one text at a time."""
    return lambda texts: [finder(text) for text in texts]


def speed(batch: Batch, texts: list[str], seconds: float) -> float:
    """Messages per second, over whole passes of the corpus (one call of `batch` each) until
    `seconds` have gone by."""
    done, started = 0, time.perf_counter()
    while True:
        batch(texts)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def figures(seconds: float) -> dict[str, Any]:
    """The bench's redaction section: ours, then Presidio's under `presidio_`, each with
    `messages_per_s`, `recall` and `precision` over all kinds and `<KIND>_recall`,
    `<KIND>_precision` per kind (exact spans). Our speed is the treatment's: the corpus
    redacted as one batch (one call to the core), redacted text and all; Presidio's is its
    analysis alone, a message at a time (its anonymiser would come on top)."""
    if not CORPUS.exists():
        return {"corpus": "missing"}
    messages = load()
    texts = [text for text, _ in messages]
    out: dict[str, Any] = {
        "messages": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
    }
    analyse = presidio()
    # prefix: (what is scored, what is timed)
    finders: dict[str, tuple[Finder, Batch]] = {"": (ours, redact_many)}
    if analyse is None:
        out["presidio"] = "not installed"
    else:
        finders["presidio_"] = (analyse, each(analyse))
    for prefix, (finder, timed) in finders.items():
        out[f"{prefix}messages_per_s"] = round(speed(timed, texts, seconds))
        counts = _counts(finder, messages)
        out |= {f"{prefix}{key}": value for key, value in _rates(counts).items()}
    return out


def _counts(finder: Finder, messages: list[tuple[str, set[Label]]]) -> dict[str, Counter[str]]:
    """Per kind: exact true positives, false positives and false negatives, and by overlap
    (otp: labels a span of their kind overlaps; ofp: spans overlapping no label of theirs)."""
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("tp", "fp", "fn", "otp", "ofp")}
    for text, labels in messages:
        found = finder(text)
        for _, _, kind in found & labels:
            counts["tp"][kind] += 1
        for _, _, kind in found - labels:
            counts["fp"][kind] += 1
        for _, _, kind in labels - found:
            counts["fn"][kind] += 1
        # Overlap: a label counts as found when a span of its kind overlaps it, and vice versa.
        for s, e, kind in labels:
            counts["otp"][kind] += any(k == kind and s < fe and fs < e for fs, fe, k in found)
        for s, e, kind in found:
            counts["ofp"][kind] += not any(k == kind and s < le and ls < e for ls, le, k in labels)
    return counts


def _rates(counts: dict[str, Counter[str]]) -> dict[str, float]:
    """recall and precision over all kinds, then per kind (exact spans; 1.0 where nothing
    was labelled or reported)."""
    kinds = [k.value for k in Kind]
    tp, fp, fn = (sum(counts[c][k] for k in kinds) for c in ("tp", "fp", "fn"))
    rates = {"recall": _share(tp, tp + fn), "precision": _share(tp, tp + fp)}
    for kind in kinds:
        tp, fp, fn = counts["tp"][kind], counts["fp"][kind], counts["fn"][kind]
        rates[f"{kind}_recall"] = _share(tp, tp + fn)
        rates[f"{kind}_precision"] = _share(tp, tp + fp)
    return rates


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def score(finder: Finder, messages: list[tuple[str, set[Label]]]) -> dict[str, str]:
    """Per kind: "recall/precision (overlap recall/precision)"."""
    counts = _counts(finder, messages)
    table: dict[str, str] = {}
    for kind in (k.value for k in Kind):
        tp, fp, fn = counts["tp"][kind], counts["fp"][kind], counts["fn"][kind]
        otp, ofp = counts["otp"][kind], counts["ofp"][kind]
        labelled, reported = tp + fn, tp + fp
        table[kind] = (
            f"{_ratio(tp, labelled)}/{_ratio(tp, reported)} "
            f"({_ratio(otp, labelled)}/{_ratio(reported - ofp, reported)})"
        )
    return table


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "  -  "


def main(seconds: float = 2.0) -> None:
    messages = load()
    texts = [text for text, _ in messages]
    per_kind = Counter(kind for _, labels in messages for *_, kind in labels)
    mean = sum(map(len, texts)) / len(texts)
    labelled = sum(per_kind.values())
    print(
        f"corpus: {len(messages)} messages, mean {mean:.0f} characters, {labelled} labelled spans"
    )
    print("labels: " + ", ".join(f"{k} {per_kind[k]}" for k in (k.value for k in Kind)))
    finders: dict[str, Finder] = {"consentry": ours}
    batches: dict[str, Batch] = {"consentry": redact_many}
    analyse = presidio()
    if analyse is None:
        print("presidio not installed")
    else:
        finders["presidio"] = analyse
        batches["presidio"] = each(analyse)
    typical = [text for text in texts if 100 <= len(text) <= 300]
    print()
    for label, sample in (("all", texts), (f"the {len(typical)} of 100-300 characters", typical)):
        rates = {name: speed(b, sample, seconds) for name, b in batches.items()}
        print(
            f"speed, {label}: "
            + "; ".join(f"{n} {r:,.0f} messages/s ({1e6 / r:,.1f} us)" for n, r in rates.items())
        )
    tables = {name: score(f, messages) for name, f in finders.items()}
    print()
    print("recall/precision per kind, exact spans (overlap in brackets)")
    print(f"{'kind':8} {'n':>4}  " + "".join(f"{name:34}" for name in finders))
    for kind in (k.value for k in Kind):
        print(f"{kind:8} {per_kind[kind]:4}  " + "".join(f"{t[kind]:34}" for t in tables.values()))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0)
