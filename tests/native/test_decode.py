"""The core's batch decoding against the oracle (tests/native/decode_oracle.py, the msgspec
implementation it replaced): random schemas and random bodies, valid, near-valid and broken,
give the same refusal of the batch, or the same event ids, invalid_event details, envelopes,
and properties' codes, details and values (same Python types)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry import jsonlimits, native
from consentry.errors import ConsentryError
from consentry.ingest import decode
from tests.native import decode_oracle as oracle

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATEST = NOW + decode.MAX_AHEAD
TYPES = ["string", "integer", "number", "boolean", "timestamp"]
NAMES = ["url", "count", "amount", "ok", "at", "email", "Name_2"]
EVENT_TYPES = ["page_view", "signup"]

texts = st.text(max_size=12)
times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda t: t.isoformat()),
    st.sampled_from(
        [
            "2026-01-01T11:00:00Z",
            "2026-01-01t11:00:00z",
            "2026-01-01 11:00:00+01:00",
            "2026-01-01T11:00:00+0130",
            "2026-01-01T12:05:00Z",
            "2026-01-01T12:05:00.000001Z",
            "2026-01-01T13:05:00+01:00",
            "2026-01-01T11:00:00",
            "2026-01-01T11:00:00.1234565Z",
            "2026-12-31T23:59:59.9999995Z",
            "9999-12-31T23:59:59.9999999Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0999-12-31T23:59:59Z",
            "1000-01-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T11:00Z",
            "2026-01-01",
            "yesterday",
            "2026-01-01T11:00:00+24:00",
            "2026-01-01T11:00:00-23:59",
            "",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, -(2**63), 2**63, 0, -0.0, 1.0, 1e308, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    times,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*NAMES, "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
fields = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(TYPES), st.booleans()),
    max_size=5,
    unique_by=lambda f: f[0],
)
schemas = st.dictionaries(st.sampled_from(EVENT_TYPES), fields, min_size=1, max_size=2)


identity = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["email", "cookie_id"]), "value": texts}),
    st.dictionaries(
        st.sampled_from(["type", "value", "extra"]), st.one_of(texts, st.integers()), max_size=3
    ),
    scalars,
)
subject = st.one_of(
    st.fixed_dictionaries({"subject_id": texts}),
    st.fixed_dictionaries({"identities": st.lists(identity, max_size=2)}),
    st.dictionaries(
        st.sampled_from(["subject_id", "identities", "nope"]),
        st.one_of(texts, st.none(), st.lists(identity, max_size=2), scalars),
        max_size=3,
    ),
    scalars,
)
properties = st.one_of(
    st.dictionaries(st.sampled_from([*NAMES, "ana@example.com", "x"]), values, max_size=5),
    values,
)


good_values = st.one_of(
    texts,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    times,
    st.none(),
)
good_properties = st.dictionaries(st.sampled_from(NAMES), good_values, max_size=6)


def rare(draw: st.DrawFn, odds: int) -> bool:
    """True about once in `odds` + 1 draws."""
    return draw(st.sampled_from(range(odds + 1))) == odds


FITTING = {
    "string": texts,
    "integer": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "number": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1)
    ),
    "boolean": st.booleans(),
    "timestamp": times,
}


@st.composite
def fitting(draw: st.DrawFn, fields: list[tuple[str, str, bool]]) -> dict[str, Any]:
    """Properties that mostly fit `fields`."""
    out: dict[str, Any] = {}
    for name, kind, required in draw(st.permutations(fields)):
        if required or draw(st.booleans()):
            out[name] = draw(scalars) if rare(draw, 9) else draw(FITTING[kind])
    return out


@st.composite
def events(draw: st.DrawFn, schemas: dict[str, list[tuple[str, str, bool]]]) -> Any:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    event: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["e-1", "e-2", "é"])),
        "event_type": event_type,
        "occurred_at": draw(st.sampled_from(["2026-01-01T11:00:00Z", "2026-01-01T12:30:00+01:00"])),
        "subject": {"identities": [{"type": "email", "value": "ana@example.com"}]},
        "properties": draw(fitting(schemas.get(event_type, [])))
        if not rare(draw, 2)
        else draw(st.one_of(good_properties, properties)),
    }
    if rare(draw, 2):
        event |= {
            "event_id": draw(st.one_of(texts, st.just("x" * 129), st.just("é" * 128), scalars)),
            "event_type": draw(st.one_of(st.sampled_from(EVENT_TYPES), texts, scalars)),
            "occurred_at": draw(st.one_of(times, scalars)),
            "subject": draw(subject),
        }
    for key in draw(st.lists(st.sampled_from(list(event)), max_size=2, unique=True)):
        if rare(draw, 3):
            del event[key]
    extra = draw(
        st.dictionaries(
            st.sampled_from(["gpc", "consent_token", "event_id", "occurred_at", "bogus"]),
            st.one_of(scalars, texts),
            max_size=2,
        )
    )
    if rare(draw, 3):
        event |= extra
    if rare(draw, 9):
        return draw(st.one_of(scalars, st.lists(scalars, max_size=2)))
    return event


@st.composite
def bodies(draw: st.DrawFn, schemas: dict[str, list[tuple[str, str, bool]]]) -> bytes:
    body: Any = {"events": draw(st.lists(events(schemas), max_size=4))}
    if draw(st.booleans()):
        body["gpc"] = draw(st.booleans()) if not rare(draw, 5) else draw(scalars)
    if rare(draw, 19):
        body[draw(st.sampled_from(["extra", "ana@example.com"]))] = 1
    if rare(draw, 19):
        body = draw(st.one_of(scalars, st.lists(scalars), st.builds(lambda: {"events": {}})))
    deep = "@deep@"
    if rare(draw, 9):
        at = draw(st.sampled_from(["events", "properties", "gpc"]))
        if isinstance(body, dict) and isinstance(body.get("events"), list):
            if at == "events" or not body["events"]:
                body["events"].append({"properties": {"x": deep}})
            elif at == "properties" and isinstance(body["events"][0], dict):
                body["events"][0]["properties"] = deep
            else:
                body["gpc"] = deep
    text = json.dumps(
        body, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )
    # Not as deep as a reader's recursion limit: Hypothesis raises it while it runs a test.
    depth = draw(st.sampled_from([29, 30, 31, 32, 33, 34, 40, 200]))
    text = text.replace(json.dumps(deep), "[" * depth + "1" + "]" * depth)
    raw = text.encode("utf-8", "surrogatepass")
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
        raw = draw(mutations(raw))
    return raw


@st.composite
def mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    at = draw(st.sampled_from(range(len(raw) + 1)))
    piece = draw(
        st.sampled_from(
            [
                b"",
                b",",
                b"]",
                b"}",
                b'"',
                b"\\",
                b"NaN",
                b"-Infinity",
                b"1e400",
                b"1" * 4400,
                b'"\\ud800"',
                b'"\\udc00\\ud800"',
                b'"\\u12"',
                b'"\\x"',
                b"\xff",
                b"\xc3",
                b"\xef\xbb\xbf",
                b"\n",
                b"\x0b",
                b"\t",
                b"\x01",
                b"01",
                b"1.",
                b"tru",
                b" ",
            ]
        )
    )
    cut = draw(st.integers(0, 3))
    mutated = raw[:at] + piece + raw[at + cut :]
    # Python's json module reads a body with a NUL among its first bytes as UTF-16 or UTF-32;
    # the core reads only UTF-8 (a body's first bytes are never NUL in practice).
    if b"\x00" in mutated[:4]:
        return raw
    return mutated


def core_decode(body: bytes, fields: dict[str, list[tuple[str, str, bool]]]) -> Any:
    compiled = {t: native.Properties(f) for t, f in fields.items()}
    try:
        decoded = decode.batch(body, LATEST, compiled)
    except ConsentryError as refused:
        return ("refused", refused.code, refused.detail)
    return decoded


def oracle_decode(body: bytes, fields: dict[str, list[tuple[str, str, bool]]]) -> Any:
    compiled = {t: oracle.compile_schema(f) for t, f in fields.items()}
    found = oracle.decode_batch(body, LATEST, compiled)
    if isinstance(found, ConsentryError):
        return ("refused", found.code, found.detail)
    return found


def typed(value: Any) -> Any:
    if isinstance(value, datetime):
        return ("datetime", value, value.utcoffset())
    return (type(value).__name__, repr(value))


def envelope(event: Any) -> Any:
    if event is None:
        return None
    subject = event.subject
    if subject is not None:
        identities = subject.identities
        if identities is not None:
            identities = [
                (i[0], i[1]) if isinstance(i, tuple) else (i.type, i.value) for i in identities
            ]
        subject = (subject.subject_id, identities)
    at = event.occurred_at
    return (
        event.event_id,
        event.event_type,
        None if at is None else typed(at),
        subject,
        event.consent_token,
        event.gpc,
        bytes(event.properties),
    )


def checked(found: Any) -> Any:
    if found is None:
        return None
    code, detail, values = found[:3]
    if values is None:
        return (code, detail)
    return [(k, typed(v)) for k, v in values.items()]


def assert_same(body: bytes, fields: dict[str, list[tuple[str, str, bool]]]) -> None:
    core, ref = core_decode(body, fields), oracle_decode(body, fields)
    if isinstance(ref, tuple) and ref[0] == "refused":
        assert core == ref, body[:300]
        return
    assert not isinstance(core, tuple), (core, body[:300])
    gpc, items = ref
    assert core.gpc == gpc
    assert len(core.items) == len(items)
    for mine, (event_id, detail, event, found) in zip(core.items, items, strict=True):
        assert mine[:2] == (event_id, detail)
        assert envelope(mine[2]) == envelope(event)
        assert checked(mine[3]) == checked(found), body[:300]


@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data(), schemas)
def test_the_core_decodes_as_the_oracle(
    data: st.DataObject, fields: dict[str, list[tuple[str, str, bool]]]
) -> None:
    assert_same(data.draw(bodies(fields)), fields)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" \x0b",
        b"[]",
        b"{}",
        b'{"events": {}}',
        b'{"events": [], "gpc": "yes"}',
        b'{"events": [1, "x", null, {"event_id": 5}]}',
        b'{\n  "events": [\n  1,]}',
        b'{"events": ["\\ud800"]}',
        b'{"events": [{"properties": ' + b"[" * 31 + b"]" * 31 + b"}]}",
        b'{"events": [{"properties": ' + b"[" * 32 + b"]" * 32 + b"}]}",
        b'{"events": [{"properties": {"count": 9223372036854775808}}]}',
        b'{"events": [], "ana@example.com": 1}',
        b'{"events": [{"event_id": "e", "event_type": "page_view", "subject": {},'
        b' "occurred_at": "2026-01-01T11:00:00Z", "properties": {"amount": 9223372036854775808}}]}',
        b"\xef\xbb\xbf{}",
        b'{"events": [{"a": NaN, "b": 1e400}]}',
        b'{"events": [[[[' + b"[" * 30 + b"]" * 34 + b"]}",
        b'{"events": [{"properties": {"count": 1e400}}, {"a": ' + b"[" * 40 + b"]" * 40 + b"}]}",
        b'{"events": [' + b"{}," * 1000 + b"{}]}",
        # Deeper than the readers go: too deep, whatever follows.
        b'{"events": [{"a": ' + b"[" * 5000 + b"]" * 4990 + b", NaN}]}",
        b'{"events": [{"a": ' + b"[" * 5000 + b"1e400",
    ],
)
def test_refusals_and_shapes_as_the_oracle(body: bytes) -> None:
    assert_same(body, {"page_view": [("count", "integer", False), ("amount", "number", False)]})


def test_the_oracle_is_the_product_of_before() -> None:
    """The differential test would pass on two copies of one mistake: the oracle still gives
    the details API.md and the existing tests pin."""
    schema = oracle.compile_schema([("url", "string", True), ("count", "integer", False)])
    assert oracle.check(schema, b"{}") == ("missing_field", "properties.url is required", None)
    assert oracle.check(schema, b'{"url": "/", "x": 1}')[:2] == (
        "unknown_field",
        "properties: a property not in the schema",
    )
    later = (NOW + timedelta(minutes=6)).isoformat()
    found = oracle.decode_batch(
        json.dumps(
            {"events": [{"event_id": "e", "event_type": "t", "subject": {}, "occurred_at": later}]}
        ).encode(),
        LATEST,
        {},
    )
    assert not isinstance(found, ConsentryError)
    assert found[1][0][1] == "occurred_at is more than 5 minutes ahead of the server's clock"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), schemas)
def test_the_json_rules_of_every_route_are_the_oracle_s(
    data: st.DataObject, fields: dict[str, list[tuple[str, str, bool]]]
) -> None:
    body = data.draw(bodies(fields))
    found, expected = jsonlimits.problem_of(body), oracle.problem_of(body)
    assert (type(found), found and found.detail) == (type(expected), expected and expected.detail)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), schemas)
def test_browser_scoping_reads_the_subjects_as_the_oracle(
    data: st.DataObject, fields: dict[str, list[tuple[str, str, bool]]]
) -> None:
    body = data.draw(bodies(fields))

    def read(subjects: Any) -> Any:
        try:
            return subjects(body)
        except ConsentryError as refused:
            return (refused.code, refused.detail)

    assert read(decode.subjects) == read(oracle.subjects)
