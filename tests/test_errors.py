"""The error tree: stable snake_case codes, each documented with its HTTP status (the statuses
themselves: tests/http/test_errors.py)."""

from __future__ import annotations

import re
from pathlib import Path

from consentry.errors import ConsentryError, all_error_classes
from consentry.http.errors import status_of

DOCS = Path(__file__).parent.parent / "docs" / "errors.md"


def test_codes_are_unique_snake_case() -> None:
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code


def test_every_code_is_documented_with_its_status() -> None:
    text = DOCS.read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", text, flags=re.MULTILINE))
    for cls in all_error_classes():
        assert cls.code in rows, f"{cls.code} is missing from docs/errors.md"
        assert int(rows[cls.code]) == status_of(cls), cls.code


def test_error_keeps_its_context() -> None:
    error = ConsentryError("boom", subject_id="sub_1")
    assert error.detail == "boom"
    assert error.context == {"subject_id": "sub_1"}
