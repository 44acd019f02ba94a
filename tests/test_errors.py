"""The error tree: stable snake_case codes, each documented, each with one HTTP status."""

from __future__ import annotations

import re
from pathlib import Path

from consentry.errors import ConsentryError, InvalidRequest, all_error_classes
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


def test_bad_input_is_never_a_5xx() -> None:
    for cls in all_error_classes():
        if issubclass(cls, InvalidRequest):
            assert 400 <= status_of(cls) < 500, cls.code


def test_error_keeps_its_context() -> None:
    error = ConsentryError("boom", subject_id="sub_1")
    assert error.detail == "boom"
    assert error.context == {"subject_id": "sub_1"}
