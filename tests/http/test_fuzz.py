"""Fuzzing for a 500 or a non-problem error: schemathesis over the app's own OpenAPI document
(every operation, valid and invalid inputs; a request body as soon as the document describes
one), and hypothesis-made deep and odd JSON posted to every route that takes a body (found
from the app, so a new route is fuzzed by itself). Bounded: the module runs in well under a
minute on SQLite; CI replays the same examples (tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from tests.conftest import auth
from tests.http.fuzzing import assert_answered, fuzz_app, schema, send
from tests.http.test_bodies import body_routes, concrete

BOUNDED = fuzz_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with fuzz_app(tmp_path_factory.mktemp("fuzz") / "data") as client:
        yield client


@schema.parametrize()
@BOUNDED
def test_no_operation_answers_500(case: Any, fuzz_client: TestClient) -> None:
    """With the admin key; every other role's: tests/http/test_fuzz_roles.py."""
    send(fuzz_client, case, auth())


def _nested(depth: int, leaf: bytes, kinds: list[bool]) -> bytes:
    opens = b"".join(b'{"k":' if obj else b"[" for obj in kinds[:depth])
    closes = b"".join(b"}" if obj else b"]" for obj in reversed(kinds[:depth]))
    return opens + leaf + closes


_LEAVES = st.sampled_from(
    [
        b"1",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e400",
        b"-1e999",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"9" * 5000,
        b'"\\ud800"',
        b'"\\u0000"',
        b"null",
        b"true",
        b'"x"',
    ]
)
_RAW_STRINGS = st.binary(min_size=1, max_size=20).map(lambda b: b'"' + b.replace(b'"', b"") + b'"')
_DEPTHS = st.sampled_from([1, 2, 31, 32, 33, 100, 253, 330, 1000, 3000])
_DEEP = st.builds(
    _nested,
    _DEPTHS,
    _LEAVES | _RAW_STRINGS,
    st.lists(st.booleans(), min_size=3000, max_size=3000),
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
).map(lambda v: json.dumps(v).encode())
_ODD_OBJECTS = st.builds(
    lambda key, value: b'{"' + key.encode() + b'": ' + value + b"}",
    st.sampled_from(["events", "subject", "purposes", "evidence", "properties", "name"]),
    _DEEP | _LEAVES | _RAW_STRINGS,
)
_BATCHES = st.builds(
    lambda leaf: (
        b'{"events": [{"event_id": "f1", "event_type": "page_view", "occurred_at": '
        b'"2026-11-20T10:00:00Z", "subject": {"identities": [{"type": "email", "value": '
        b'"fuzz@example.com"}]}, "properties": {"count": ' + leaf + b"}}]}"
    ),
    _DEEP | _LEAVES | _RAW_STRINGS,
)
_HUGE = st.sampled_from(
    [
        b'{"name": "' + b"x" * (1024 * 1024 - 20) + b'"}',
        b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        b"[" * 600_000 + b"]" * 400_000,
    ]
)
BODIES = (
    st.sampled_from([b"", b" ", b"{", b"}", b"\xff", b"\x00", b"{}", b"[]", b'""', b"0"])
    | _DEEP
    | _JSON_VALUES
    | _ODD_OBJECTS
    | _BATCHES
    | st.binary(max_size=64)
    | _HUGE
)


def _batch(properties: bytes) -> bytes:
    return (
        b'{"events": [{"event_id": "f2", "event_type": "page_view", "occurred_at": '
        b'"2026-11-20T10:00:00Z", "subject": {"identities": [{"type": "email", "value": '
        b'"fuzz@example.com"}]}, "properties": ' + properties + b"}]}"
    )


# Each kind of the issue at least once, whatever the random draw (each was a 500 before).
KNOWN = [
    b'{"subject": ' + b'{"k": ' * 300 + b"1" + b"}" * 300 + b"}",
    b'{"evidence": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b"[" * 3000 + b"]" * 3000,
    _batch(b'{"url": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    _batch(b'{"url": "caf\xe9"}'),
    _batch(b'{"url": "\xff\xfe"}'),
]


@BOUNDED
@given(body=BODIES, content_type=st.sampled_from(["application/json", "text/plain"]))
@example(body=KNOWN[0], content_type="application/json")
@example(body=KNOWN[1], content_type="application/json")
@example(body=KNOWN[2], content_type="application/json")
@example(body=KNOWN[3], content_type="application/json")
@example(body=KNOWN[4], content_type="application/json")
@example(body=KNOWN[5], content_type="application/json")
def test_odd_json_to_every_body_route_is_never_a_500(
    fuzz_client: TestClient, body: bytes, content_type: str
) -> None:
    app = fuzz_client.app
    assert isinstance(app, FastAPI)
    headers = auth() | {"Content-Type": content_type}
    for route in body_routes(app):
        for method in route.methods:
            resp = fuzz_client.request(method, concrete(route.path), headers=headers, content=body)
            assert_answered(resp.status_code, resp.headers.get("content-type", ""), route.path)


_ZONES = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_TIMES = st.datetimes(timezones=_ZONES).map(datetime.isoformat) | st.datetimes().map(
    datetime.isoformat
)
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@BOUNDED
@given(moment=_TIMES)
@example(moment=EDGE_TIMES[0])
@example(moment=EDGE_TIMES[1])
def test_any_time_in_a_query_string_or_a_body_is_never_a_500(
    fuzz_client: TestClient, moment: str
) -> None:
    """Times over the whole calendar, any offset, with and without a zone: in the query string
    of GET /v1/events and in every body field that holds a time."""
    h = auth()
    for field in ("from", "to"):
        resp = fuzz_client.get(
            "/v1/events", headers=h, params={"purpose": "analytics", field: moment}
        )
        assert_answered(resp.status_code, resp.headers.get("content-type", ""), (field, moment))
        for path in ("/v1/query", "/v1/exports"):
            resp = fuzz_client.post(path, headers=h, json={"purpose": "analytics", field: moment})
            assert_answered(resp.status_code, resp.headers.get("content-type", ""), (path, moment))
    for method, path, body in (
        (
            "POST",
            "/v1/requests/x1/extend",
            {"months": 1, "reason": "r", "subject_notified_at": moment},
        ),
        ("DELETE", "/v1/subjects/x1/restriction", {"reason": "r", "subject_informed_at": moment}),
    ):
        resp = fuzz_client.request(method, path, headers=h, json=body)
        assert_answered(resp.status_code, resp.headers.get("content-type", ""), (path, moment))
