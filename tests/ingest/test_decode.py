"""ingest/decode.py: an events batch refused whole or decoded, each event's own refusal, and
details that name fields and rules but never a value or a key that was sent. No I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import native
from consentry.errors import BatchTooLarge, BodyNotObject, InvalidBatch, MalformedJSON
from consentry.ingest import decode

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATEST = NOW + decode.MAX_AHEAD


def good(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": "page_view",
        "occurred_at": "2026-01-01T11:00:00Z",
        "subject": {"identities": [{"type": "email", "value": "ana@example.com"}]},
        "properties": {"url": "/shop"},
    }
    return {k: v for k, v in (body | changes).items() if v is not None}


def raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(value).encode())


def test_a_batch_decodes_to_its_raw_events() -> None:
    batch = decode.batch(
        json.dumps({"events": [good(), good(event_id="e-2")], "gpc": True}).encode()
    )
    assert batch.gpc is True
    assert [json.loads(bytes(e))["event_id"] for e in batch.events] == ["e-1", "e-2"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", MalformedJSON),
        (b"  \n", MalformedJSON),
        (b'{"events": [', MalformedJSON),
        (b"[]", BodyNotObject),
        (b'"events"', BodyNotObject),
        (b"{}", InvalidBatch),
        (b'{"events": {}}', InvalidBatch),
        (b'{"events": [], "extra": 1}', InvalidBatch),
    ],
)
def test_a_batch_is_refused_whole_with_its_error(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode.batch(body)


def test_a_batch_holds_at_most_max_events() -> None:
    decode.batch(json.dumps({"events": [{}] * decode.MAX_EVENTS}).encode())
    with pytest.raises(BatchTooLarge, match=f"not {decode.MAX_EVENTS + 1}"):
        decode.batch(json.dumps({"events": [{}] * (decode.MAX_EVENTS + 1)}).encode())


def test_an_unknown_batch_key_is_not_repeated() -> None:
    with pytest.raises(InvalidBatch) as caught:
        decode.batch(b'{"events": [], "ana@example.com": 1}')
    assert "ana@example.com" not in str(caught.value)


def test_a_complete_event_decodes() -> None:
    event, why = decode.event(raw(good()), LATEST)
    assert why is None
    assert event is not None
    assert (event.event_id, event.event_type) == ("e-1", "page_view")
    assert event.occurred_at == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    assert json.loads(bytes(event.properties)) == {"url": "/shop"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_id": None}, "event_id is missing"),
        ({"event_id": ""}, "event_id is missing"),
        ({"event_id": "x" * 129}, "event_id is 1-128 characters"),
        ({"event_id": "a\x00b"}, "without NUL"),
        ({"event_type": None}, "event_type is missing"),
        ({"event_type": "a\x00"}, "event_type is missing"),
        ({"subject": None}, "subject is missing"),
        ({"occurred_at": None}, "occurred_at is missing or has no time zone"),
        ({"occurred_at": "2026-01-01T11:00:00"}, "occurred_at is missing or has no time zone"),
        ({"occurred_at": "2026-01-01T12:06:00Z"}, "more than 5 minutes ahead"),
    ],
)
def test_an_incomplete_event_is_invalid_with_a_reason(changes: dict[str, Any], reason: str) -> None:
    _event, why = decode.event(raw(good(**changes)), LATEST)
    assert why is not None
    assert reason in why


def test_five_minutes_ahead_is_still_accepted() -> None:
    at = (LATEST).isoformat()
    assert decode.event(raw(good(occurred_at=at)), LATEST)[1] is None
    later = (LATEST + timedelta(seconds=1)).isoformat()
    assert decode.event(raw(good(occurred_at=later)), LATEST)[1] is not None


@pytest.mark.parametrize(
    "value",
    [[], "event", 5, good(subject={"nope": 1}), good(event_id=5), good(gpc="yes")],
)
def test_an_event_of_the_wrong_shape_is_invalid(value: object) -> None:
    event, why = decode.event(raw(value), LATEST)
    assert event is None
    assert why


def test_an_event_that_is_not_json_is_invalid() -> None:
    assert decode.event(msgspec.Raw(b"{nope"), LATEST) == (
        None,
        "the event is not a JSON object the API can read",
    )


def test_event_id_of_a_broken_event() -> None:
    assert decode.event_id_of(raw({"event_id": "e-9", "subject": 5})) == "e-9"
    assert decode.event_id_of(raw({"event_id": "x" * 200})) == "x" * 128
    assert decode.event_id_of(raw({"event_id": 9})) is None
    assert decode.event_id_of(raw([1])) is None
    assert decode.event_id_of(msgspec.Raw(b"{nope")) is None


# A schema with a required string and an optional integer, compiled in the core.
PROPS = native.Properties([("url", "string", True), ("count", "integer", False)])


def describe_props(value: object) -> tuple[str, str]:
    code, detail, values, _redacted = PROPS.check(json.dumps(value).encode())
    if values is not None or code is None or detail is None:
        raise AssertionError("decoded")
    return code, detail


def test_describe_names_the_field_and_the_rule() -> None:
    assert describe_props({}) == ("missing_field", "properties.url is required")
    assert describe_props({"url": 5}) == (
        "invalid_field",
        "properties.url: expected str, got int",
    )
    assert describe_props({"url": "/", "count": 2**70}) == (
        "invalid_field",
        "properties.count: an integer beyond signed 64 bits",
    )
    assert describe_props({"url": "/", "extra": 1}) == (
        "unknown_field",
        "properties: a property not in the schema",
    )


@given(st.text(min_size=1).filter(lambda k: k not in {"url", "count"}))
def test_an_unknown_key_is_never_repeated(key: str) -> None:
    code, detail = describe_props({"url": "/", key: "ana@example.com"})
    assert code == "unknown_field"
    assert key not in detail or key in "properties: a property not in the schema"
    assert "ana@example.com" not in detail


@given(st.text())
def test_a_wrong_value_is_never_repeated(value: str) -> None:
    _code, detail = describe_props({"url": "/", "count": value})
    assert detail == "properties.count: expected int, got str"


def test_every_result_code_has_a_detail() -> None:
    assert all(isinstance(text, str) and text for text in decode.DETAILS.values())
    assert "5 minutes" in decode.DETAILS["invalid_event"]
