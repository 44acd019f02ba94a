"""jsonlimits.py: the JSON the product accepts, and one code per kind of bad input."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import jsonlimits
from consentry.errors import InvalidNumber, InvalidUtf8, JsonTooDeep, MalformedJSON
from consentry.jsonlimits import INT_MAX, INT_MIN, MAX_DEPTH

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
# Up to 4 levels of nesting: well inside MAX_DEPTH.
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def short(value: object) -> str:
    """A test id: the start of a body (some are 200,000 bytes), or an error class's name."""
    if isinstance(value, bytes):
        return repr(value[:12])[2:-1] + (f"...({len(value)})" if len(value) > 12 else "")
    return getattr(value, "__name__", str(value))


@given(documents)
def test_a_document_within_the_limits_decodes_to_itself(value: Any) -> None:
    body = msgspec.json.encode(value)
    assert jsonlimits.problem_of(body) is None
    assert jsonlimits.decode(body) == value


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"", MalformedJSON),
        (b" \n\t", MalformedJSON),
        (b'{"a": 1', MalformedJSON),
        (b"{'a': 1}", MalformedJSON),
        (b'{"a": "\xff"}', InvalidUtf8),
        (b'{"a": "\xc0\xaf"}', InvalidUtf8),
        (b'{"a": "\\ud800"}', InvalidUtf8),
        (b'{"\\udc00": 1}', InvalidUtf8),
        (b'{"a": NaN}', InvalidNumber),
        (b"[Infinity]", InvalidNumber),
        (b"-Infinity", InvalidNumber),
        (b"1e400", InvalidNumber),
        (str(INT_MAX + 1).encode(), InvalidNumber),
        (b'{"n": [' + str(INT_MIN - 1).encode() + b"]}", InvalidNumber),
        (b"1" * 5000, InvalidNumber),
        (nested(MAX_DEPTH + 1), JsonTooDeep),
        (nested(100_000), JsonTooDeep),
        (b"[" * 5000, JsonTooDeep),
    ],
    ids=short,
)
def test_each_kind_of_bad_input_has_its_own_error(body: bytes, kind: type[Exception]) -> None:
    found = jsonlimits.problem_of(body)
    assert type(found) is kind, found
    with pytest.raises(kind):
        jsonlimits.decode(body)


def test_the_limits_themselves_are_accepted() -> None:
    assert jsonlimits.decode(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert jsonlimits.decode(f"[{INT_MIN}, {INT_MAX}]".encode()) == [INT_MIN, INT_MAX]
    assert jsonlimits.decode('{"name": "Zoë"}'.encode()) == {"name": "Zoë"}


def test_depth_counts_objects_and_arrays_alike() -> None:
    inside = b'{"a":' * (MAX_DEPTH - 1) + b"[1]" + b"}" * (MAX_DEPTH - 1)
    assert jsonlimits.problem_of(inside) is None
    deeper = b'{"a":' * MAX_DEPTH + b"[1]" + b"}" * MAX_DEPTH
    assert isinstance(jsonlimits.problem_of(deeper), JsonTooDeep)


def test_too_deep_is_named_before_a_number_out_of_range() -> None:
    body = b"[" + str(INT_MAX + 1).encode() + b", " + nested(MAX_DEPTH) + b"]"
    assert isinstance(jsonlimits.problem_of(body), JsonTooDeep)


def test_malformed_json_says_where() -> None:
    found = jsonlimits.problem_of(b'{\n  "a": 1,\n  "b": }')
    assert isinstance(found, MalformedJSON)
    assert "line 3" in found.detail


def test_check_utf8_names_the_first_bad_byte() -> None:
    jsonlimits.check_utf8(b"plain ascii")
    jsonlimits.check_utf8("caf\u00e9".encode())
    with pytest.raises(InvalidUtf8, match="byte 4"):
        jsonlimits.check_utf8(b'"caf\xe9"')
