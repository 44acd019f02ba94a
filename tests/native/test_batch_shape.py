"""A batch's rows in one call to the core (consentry.native.shape_batch, core/src/batch.rs)
against the Python that wrote every row before it (tests/native/reference.py): each decision's
field plan narrowed to the fields each event has, the values pseudonymised (HMAC of the field
and str(value)), redacted (the recognizers' own oracle, tests/native/redact_reference.py) or
tokenised as the caller issued, the clear JSON, the sealed plaintext and field_purposes byte
for byte, each event sealed under its own subject's key and id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry import native
from tests.native import redact_reference, reference

KEYS = [bytes(range(32)), bytes(range(1, 33))]
PSEUDONYM_KEY = b"pseudonym-key"
SUBJECTS = ["sub_0123456789abcdef0123", "sub_fedcba98765432100000"]
NAMES = ["a", "b", "c", "Zeta", "amount_2", "x_y", "note"]
TREATMENTS = ["keep", "pseudonymise", "redact", "tokenise"]
LATEST = int((datetime(2100, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
AT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["mail kim@example.com now", "ring +44 7700 900123", "card 4111 1111 1111 1111", "ok"]
    ),
)
kept_values = st.one_of(
    texts,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def _redacted(text: str) -> str:
    out, pos = [], 0
    for span in redact_reference.find(text):
        out += [text[pos : span.start], f"<{span.kind.value}>"]
        pos = span.end
    return "".join([*out, text[pos:]])


def _treated(treatment: str, name: str, value: Any, tokens: dict[str, str]) -> str:
    if treatment == "pseudonymise":
        return reference.field_pseudonym(PSEUDONYM_KEY, name, value)
    if treatment == "redact":
        return _redacted(value)
    return tokens[name]


def _event(event_id: str, subject_id: str) -> native.Event:
    raw = json.dumps(
        {
            "event_id": event_id,
            "event_type": "t",
            "occurred_at": AT.astimezone(UTC).isoformat(),
            "subject": {"subject_id": subject_id},
            "properties": {},
        }
    ).encode()
    _id, invalid, event = native.decode_event(raw, LATEST * 1_000_000)
    assert invalid is None
    assert event is not None
    return event


@st.composite
def plans(draw: st.DrawFn) -> list[tuple[str, str, bool, list[str] | None]]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True))
    return [
        (
            name,
            draw(st.sampled_from(TREATMENTS)),
            draw(st.booleans()),
            draw(st.one_of(st.none(), st.lists(st.sampled_from(["p1", "p2"]), unique=True))),
        )
        for name in names
    ]


@st.composite
def batches(draw: st.DrawFn) -> tuple[Any, ...]:
    decisions = draw(st.lists(plans(), min_size=1, max_size=3))
    events = []
    for n in range(draw(st.integers(1, 6))):
        d = draw(st.integers(0, len(decisions) - 1))
        values: dict[str, Any] = {}
        for name, treatment, _sealed, _narrowed in decisions[d]:
            if draw(st.booleans()):
                values[name] = draw(kept_values if treatment == "keep" else texts)
        # A field the plan does not keep is not stored.
        if draw(st.booleans()):
            values["dropped"] = "x"
        events.append((f"e{n}", d, values))
    return decisions, events


def _expected(
    plan: list[tuple[str, str, bool, list[str] | None]],
    values: dict[str, Any],
    tokens: dict[str, str],
    subject: int,
) -> tuple[str, bytes | None, str, int, str | None]:
    keep, treat, treated, narrowed = [], [], {}, {}
    for name, treatment, sealed, purposes in plan:
        if name not in values:
            continue
        if purposes is not None:
            narrowed[name] = purposes
        if treatment == "keep":
            keep.append((name, sealed))
            continue
        treat.append((name, sealed))
        treated[name] = _treated(treatment, name, values[name], tokens)
    clear, personal, at, key = reference.shaped_row(
        keep, treat, values, treated, SUBJECTS[subject], AT
    )
    encoder = msgspec.json.Encoder(order="sorted")
    field_purposes = encoder.encode(narrowed).decode() if narrowed else None
    return clear, personal, at, key, field_purposes


@settings(max_examples=150, deadline=None)
@given(batches())
def test_the_core_writes_the_rows_python_wrote(batch: tuple[Any, ...]) -> None:
    decisions, events = batch
    groups = [
        (
            native.FieldPlan(plan, json.dumps(["p1"]), 3),
            native.Sealer(KEYS[d % 2]),
            SUBJECTS[d % 2],
            "t",
            2,
        )
        for d, plan in enumerate(decisions)
    ]
    tokens = {
        n: {name: f"tok_{n}_{name}" for name, t, *_ in decisions[d] if t == "tokenise"}
        for n, (_, d, _) in enumerate(events)
    }
    rows = native.shape_batch(
        groups,
        list(range(len(events))),
        [d for _, d, _ in events],
        [_event(event_id, SUBJECTS[d % 2]) for event_id, d, _ in events],
        [values for *_, values in events],
        tokens,
        native.Pseudonymiser(PSEUDONYM_KEY),
    )
    for n, ((event_id, d, values), row) in enumerate(zip(events, rows, strict=True)):
        clear, personal, at, key, narrowed = _expected(decisions[d], values, tokens[n], d % 2)
        assert row[:7] == (event_id, "t", 2, at, SUBJECTS[d % 2], '["p1"]', clear)
        assert row[8:] == (narrowed, 3, key)
        if personal is None:
            assert row[7] is None
        else:
            blob = row[7]
            assert isinstance(blob, bytes)
            assert reference.open_(KEYS[d % 2], blob, reference.event_aad(event_id)) == personal


def test_only_the_events_named_are_shaped_in_the_order_named() -> None:
    plan = native.FieldPlan([("url", "keep", False, None)], '["a"]', 1)
    group = (plan, native.Sealer(KEYS[0]), SUBJECTS[0], "t", 1)
    events = [_event(f"e{n}", SUBJECTS[0]) for n in range(3)]
    values = [{"url": f"/{n}"} for n in range(3)]
    rows = native.shape_batch([group, None], [2, 0], [0, 1, 0], events, values, {}, _key())
    assert [(r[0], r[6]) for r in rows] == [("e2", '{"url":"/2"}'), ("e0", '{"url":"/0"}')]
    with pytest.raises(ValueError, match="no decision"):
        native.shape_batch([group, None], [1], [0, 1, 0], events, values, {}, _key())


def test_a_pseudonym_is_of_the_value_as_python_spells_it() -> None:
    plan = native.FieldPlan([("n", "pseudonymise", False, None)], "[]", 0)
    group = (plan, native.Sealer(KEYS[0]), SUBJECTS[0], "t", 1)
    (row,) = native.shape_batch(
        [group], [0], [0], [_event("e", SUBJECTS[0])], [{"n": 42}], {}, _key()
    )
    assert json.loads(str(row[6])) == {"n": reference.field_pseudonym(PSEUDONYM_KEY, "n", 42)}


def test_a_tokenised_value_without_its_token_is_refused() -> None:
    plan = native.FieldPlan([("card", "tokenise", False, None)], "[]", 0)
    group = (plan, native.Sealer(KEYS[0]), SUBJECTS[0], "t", 1)
    with pytest.raises(ValueError, match="no token for the field card"):
        native.shape_batch(
            [group], [0], [0], [_event("e", SUBJECTS[0])], [{"card": "4111"}], {}, _key()
        )


def test_a_plan_naming_a_field_twice_or_an_unknown_treatment_is_refused() -> None:
    with pytest.raises(ValueError, match="names a field twice"):
        native.FieldPlan([("a", "keep", False, None), ("a", "redact", True, None)], "[]", 0)
    with pytest.raises(ValueError, match='no treatment "drop"'):
        native.FieldPlan([("a", "drop", False, None)], "[]", 0)


def _key() -> native.Pseudonymiser:
    return native.Pseudonymiser(PSEUDONYM_KEY)


def test_a_plan_keeps_the_shapes_of_at_most_1024_sets_of_fields() -> None:
    # A sender varying which optional fields it sends meets a new set of fields with nearly
    # every event: the plan, shared by every subject deciding alike, must not grow with them.
    names = [f"f{n}" for n in range(12)]
    plan = native.FieldPlan([(name, "keep", False, None) for name in names], "[]", 0)
    group = (plan, native.Sealer(KEYS[0]), SUBJECTS[0], "t", 1)
    sets = [{name: 1 for b, name in enumerate(names) if n >> b & 1} for n in range(1, 3_001)]
    for start in range(0, len(sets), 500):
        chunk = sets[start : start + 500]
        events = [_event(f"e{start + n}", SUBJECTS[0]) for n in range(len(chunk))]
        rows = native.shape_batch(
            [group], list(range(len(chunk))), [0] * len(chunk), events, chunk, {}, _key()
        )
        assert [json.loads(str(r[6])) for r in rows] == chunk
        assert 0 < plan.cached_shapes <= 1_024
