"""The core's rows (core/src/shape.rs and json.rs, through consentry.native.shape_batch)
against the Python that wrote every row stored before it (tests/native/reference.py): the same
clear JSON byte for byte, the same sealed plaintext, occurred_at text and subject_key, for any
plan and any value an event can hold (treated values stand in as the vault's tokens, which the
core stores as given; tests/native/test_batch_shape.py checks the treatments themselves)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import native
from tests.native import reference

KEY = bytes(range(32))
NAMES = ["a", "b", "c", "d", "e", "f", "g", "Zeta", "amount_2", "x_y"]
ZONES = [UTC] + [
    timezone(timedelta(minutes=m)) for m in (330, -60, 14 * 60, -12 * 60, 45, -(9 * 60 + 30))
]
times = st.datetimes(
    min_value=datetime(1001, 1, 2),
    max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from(ZONES),
)
# When events happen: what the decoder takes as occurred_at (not after its latest time).
occurred = st.datetimes(
    min_value=datetime(1971, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from(ZONES),
)
LATEST = int((datetime(2100, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    times,
)
subject_ids = st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda r: f"sub_{r}")


@st.composite
def events(draw: st.DrawFn) -> tuple[Any, ...]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True))
    split = draw(st.integers(0, len(names)))
    keep = [(n, draw(st.booleans())) for n in names[:split]]
    treat = [(n, draw(st.booleans())) for n in names[split:]]
    properties = {n: draw(values) for n in NAMES if draw(st.booleans()) or n in names}
    treated = {n: draw(st.text(max_size=30)) for n, _ in treat}
    return keep, treat, properties, treated, draw(subject_ids), draw(occurred)


def _event(event_id: str, subject_id: str, occurred_at: datetime) -> native.Event:
    raw = json.dumps(
        {
            "event_id": event_id,
            "event_type": "page_view",
            "occurred_at": occurred_at.isoformat(),
            "subject": {"subject_id": subject_id},
            "properties": {},
        }
    ).encode()
    _id, invalid, event = native.decode_event(raw, LATEST * 1_000_000)
    assert invalid is None, invalid
    assert event is not None
    return event


def _rows(
    plan: native.FieldPlan, batch: list[tuple[dict[str, Any], dict[str, str], native.Sealer, str]]
) -> list[tuple[object, ...]]:
    """Each (properties, tokens, sealer, event_id) shaped under `plan` for one subject."""
    subject_id, at = "sub_00000000000000000000", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return native.shape_batch(
        [(plan, sealer, subject_id, "t", 1) for _, _, sealer, _ in batch],
        list(range(len(batch))),
        list(range(len(batch))),
        [_event(event_id, subject_id, at) for *_, event_id in batch],
        [properties for properties, *_ in batch],
        {n: tokens for n, (_, tokens, _, _) in enumerate(batch)},
        native.Pseudonymiser(b"pseudonym-key"),
    )


def _row(event: tuple[Any, ...], event_id: str = "e1") -> tuple[object, ...]:
    keep, treat, properties, treated, subject_id, occurred_at = event
    plan = native.FieldPlan(
        [(n, "keep", sealed, None) for n, sealed in keep]
        + [(n, "tokenise", sealed, None) for n, sealed in treat],
        '["analytics"]',
        5,
    )
    sealer = native.Sealer(KEY)
    (row,) = native.shape_batch(
        [(plan, sealer, subject_id, "page_view", 3)],
        [0],
        [0],
        [_event(event_id, subject_id, occurred_at)],
        [properties],
        {0: treated},
        native.Pseudonymiser(b"pseudonym-key"),
    )
    return row


@given(events())
def test_the_core_writes_the_row_python_wrote(event: tuple[Any, ...]) -> None:
    keep, treat, properties, treated, subject_id, occurred_at = event
    clear, personal, at, key = reference.shaped_row(
        keep, treat, properties, treated, subject_id, occurred_at
    )
    row = _row(event)
    assert row[:7] == ("e1", "page_view", 3, at, subject_id, '["analytics"]', clear)
    assert row[8:] == (None, 5, key)
    if personal is None:
        assert row[7] is None
    else:
        assert isinstance(row[7], bytes)
        assert reference.open_(KEY, row[7], reference.event_aad("e1")) == personal


@pytest.mark.parametrize(
    "value",
    [811212085039910.2, -1929377421321310.2, 1e16, 1.5e-6, 0.00001, 5e-324, 1.7976931348623157e308],
)
def test_floats_are_spelled_as_msgspec_spells_them_ties_included(value: float) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    event = ([("a", False)], [], {"a": value}, {}, "sub_00000000000000000000", at)
    assert _row(event)[6] == reference.shaped_row(*event)[0]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e13, max_value=1e17))
def test_large_floats_where_ties_happen_are_spelled_as_msgspec_spells_them(value: float) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    event = ([("a", False)], [], {"a": value}, {}, "sub_00000000000000000000", at)
    assert _row(event)[6] == reference.shaped_row(*event)[0]


def test_a_field_named_twice_in_a_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="names a field twice"):
        native.FieldPlan([("email", "keep", False, None), ("email", "redact", True, None)], "[]", 0)


def test_a_batch_seals_each_event_under_its_own_id_and_key() -> None:
    plan = native.FieldPlan(
        [("email", "keep", True, None), ("page", "keep", False, ["a"])], '["a"]', 1
    )
    other = bytes(range(1, 33))
    rows = _rows(
        plan,
        [
            ({"email": f"p{n}@example.com", "page": "/"}, {}, native.Sealer(k), f"e{n}")
            for n, k in enumerate([KEY, other, KEY])
        ],
    )
    assert [r[8] for r in rows] == ['{"page":["a"]}'] * 3
    for n, (row, k) in enumerate(zip(rows, [KEY, other, KEY], strict=True)):
        blob = row[7]
        assert isinstance(blob, bytes)
        assert reference.open_(k, blob, reference.event_aad(f"e{n}")) == (
            f'{{"email":"p{n}@example.com"}}'.encode()
        )
    with pytest.raises(reference.Refused):
        reference.open_(KEY, rows[0][7], reference.event_aad("e1"))  # type: ignore[arg-type]


def test_received_at_goes_after_occurred_at() -> None:
    row = _row(
        (
            [("a", False)],
            [],
            {"a": 1},
            {},
            "sub_00000000000000000000",
            datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    (stamped,) = native.received([row], "2026-01-01T00:00:01.000000Z")
    assert stamped[:4] == row[:4]
    assert stamped[4] == "2026-01-01T00:00:01.000000Z"
    assert stamped[5:] == row[4:]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), "not finite"),
        (2**63, "beyond signed 64 bits"),
        ([1], "not a value an event stores"),
        (datetime(2026, 1, 1), "without a time zone"),
    ],
)
def test_a_value_stored_json_cannot_hold_is_refused(value: object, error: str) -> None:
    event = (
        [("a", False)],
        [],
        {"a": value},
        {},
        "sub_00000000000000000000",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    with pytest.raises((ValueError, TypeError), match=error):
        _row(event)
