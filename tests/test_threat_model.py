"""docs/threat-model.md names the test behind each control: every one it names exists, so a
renamed or deleted test shows up here rather than as a control that silently lost its proof."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "threat-model.md"
# `tests/dir/test_x.py::test_name`, as the page writes them.
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
# A whole file named as the test, and whether the page says it comes with issue 21.
FILE = re.compile(r"`(tests/[\w/]+\.py)`( \(added with this issue\))?")


def test_every_named_test_exists() -> None:
    named = NAMED.findall(DOC.read_text())
    assert len(named) > 100, "the page names the tests of its controls"
    missing = []
    for path, name in named:
        source = ROOT / path
        text = source.read_text() if source.exists() else ""
        if not re.search(rf"^\s*(?:async )?def {name}\(", text, flags=re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_every_named_test_file_exists_or_is_marked_as_coming() -> None:
    text = DOC.read_text()
    absent = [
        path for path, coming in FILE.findall(text) if not coming and not (ROOT / path).exists()
    ]
    assert absent == []


def test_the_page_has_every_boundary_and_its_gaps() -> None:
    headings = re.findall(r"^## (.+)$", DOC.read_text(), flags=re.MULTILINE)
    assert headings == [
        "Assets",
        "Trust boundaries",
        "Browser",
        "Collector / SDK",
        "Operator",
        "Analyst",
        "Recipient (downstream system)",
        "Database",
        "Key store",
        "Kafka",
        "Gaps",
    ]
