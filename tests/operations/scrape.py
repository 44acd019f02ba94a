"""Reading `/metrics` in tests: the samples of a scrape, by name and labels."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: Any) -> float:
    """The sample's value; 0 when absent (a counter never incremented)."""
    return found.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def families(text: str) -> set[str]:
    """Every metric the scrape declares (`# TYPE`), with or without samples."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
