"""http/pagination.py: cursors round-trip what this server puts in them and refuse the rest."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.errors import InvalidCursor
from consentry.http import pagination

ID_SHAPE = re.compile(r"sub_[a-z0-9]{4}")

# What a list puts in a cursor: positions, ids and times (text without NUL or lone surrogates).
values = st.one_of(
    st.integers(min_value=0, max_value=pagination.MAX_POSITION),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
)
positions = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=4)


def forged(value: object) -> str:
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@given(positions)
def test_a_cursor_holds_its_position(position: dict[str, object]) -> None:
    cursor = pagination.encode_cursor(position)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", cursor)
    assert pagination.decode_cursor(cursor, set(position)) == position


@given(st.text(max_size=40))
def test_any_text_decodes_to_a_position_or_invalid_cursor(text: str) -> None:
    try:
        position = pagination.decode_cursor(text, {"after"})
    except InvalidCursor:
        return
    assert set(position) == {"after"}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "%%%",
        forged([1]),
        forged("after"),
        forged({"after": 1, "extra": 2}),
        forged({"before": 1}),
        forged({"after": -1}),
        forged({"after": pagination.MAX_POSITION + 1}),
        forged({"after": True}),
        forged({"after": 1.5}),
        forged({"after": None}),
        forged({"after": [1]}),
        forged({"after": "a\x00b"}),
        forged({"after": "\ud800"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_forged_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        pagination.decode_cursor(cursor, {"after"})


def test_int_position_takes_only_a_non_negative_integer() -> None:
    assert pagination.int_position(pagination.encode_cursor({"after": 7}), "after") == 7
    assert pagination.int_position(forged({"after": pagination.MAX_POSITION}), "after") == (
        pagination.MAX_POSITION
    )
    for value in ("7", 0.0, False):
        with pytest.raises(InvalidCursor):
            pagination.int_position(forged({"after": value}), "after")


def test_str_position_takes_only_an_id_of_the_shape_given() -> None:
    cursor = pagination.encode_cursor({"after": "sub_ab12"})
    assert pagination.str_position(cursor, "after", ID_SHAPE) == "sub_ab12"
    for value in ("sub_ab12x", "x sub_ab12", "sub_AB12", 12):
        with pytest.raises(InvalidCursor):
            pagination.str_position(forged({"after": value}), "after", ID_SHAPE)


def test_a_page_is_items_and_next() -> None:
    assert pagination.page([1, 2], "abc") == {"items": [1, 2], "next": "abc"}
    assert pagination.page([], None) == {"items": [], "next": None}
