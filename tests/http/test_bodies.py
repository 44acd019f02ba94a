"""One rule for every JSON body: each kind of bad input gets the same status and code on every
route that takes a body (enumerated from the app, so a new route is covered by itself)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.app import create_app
from consentry.consent.handlers import CheckBody, CheckIn
from consentry.errors import ConsentryError
from consentry.http.bodies import BodyDecoder
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth
from tests.http.test_conventions import assert_problem

JSON = {"Content-Type": "application/json"}
DEEP = b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}"

# (kind, body, status, code): every route that takes a body answers each the same way.
BAD_BODIES = [
    ("malformed", b'{"a": ', 400, "malformed_json"),
    ("malformed_trailing", b'{"a": 1} x', 400, "malformed_json"),
    ("whitespace_only", b"  \n", 400, "malformed_json"),
    ("too_deep", DEEP, 400, "json_too_deep"),
    ("too_deep_for_the_parser", b"[" * 100_000 + b"]" * 100_000, 400, "json_too_deep"),
    ("too_deep_unclosed", b"[" * 5_000, 400, "json_too_deep"),
    ("nan", b'{"a": NaN}', 400, "invalid_number"),
    ("infinity", b'{"a": [-Infinity]}', 400, "invalid_number"),
    ("float_overflow", b'{"a": 1e400}', 400, "invalid_number"),
    ("int_beyond_64_bits", b'{"a": 9223372036854775808}', 400, "invalid_number"),
    ("int_below_64_bits", b'{"a": -9223372036854775809}', 400, "invalid_number"),
    ("int_of_5000_digits", b'{"a": ' + b"9" * 5000 + b"}", 400, "invalid_number"),
    ("invalid_utf8", b'{"a": "\xff\xfe"}', 400, "invalid_utf8"),
    ("overlong_utf8", b'{"a": "\xc0\xaf"}', 400, "invalid_utf8"),
    ("lone_surrogate", b'{"a": "\\ud800"}', 400, "invalid_utf8"),
    ("array", b"[]", 422, "body_not_object"),
    ("string", b'"events"', 422, "body_not_object"),
    ("number", b"12", 422, "body_not_object"),
    ("null", b"null", 422, "body_not_object"),
]


def body_routes(app: FastAPI) -> list[APIRoute]:
    """Every route that reads a body: a declared model, or the raw request (POST /v1/events)."""
    return [
        r
        for r in app.routes
        if isinstance(r, APIRoute)
        and r.methods & {"POST", "PUT", "PATCH"}
        and (r.body_field is not None or r.dependant.request_param_name is not None)
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("bodies") / "data"
    settings = Settings(data_dir=data, admin_key=ADMIN_KEY, master_key=MASTER_KEY)
    with TestClient(create_app(settings)) as client:
        yield client


def routes_of(client: TestClient) -> list[tuple[str, str]]:
    app = client.app
    assert isinstance(app, FastAPI)
    return [(method, r.path) for r in body_routes(app) for method in sorted(r.methods)]


def test_the_enumeration_finds_the_raw_body_route(sqlite_client: TestClient) -> None:
    found = routes_of(sqlite_client)
    assert ("POST", "/v1/events") in found
    assert ("POST", "/v1/consents") in found
    assert ("PUT", "/v1/systems/{system_id}") in found


@pytest.mark.parametrize(
    ("kind", "body", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_each_bad_body_gets_one_answer_everywhere(
    sqlite_client: TestClient, kind: str, body: bytes, status: int, code: str
) -> None:
    for method, path in routes_of(sqlite_client):
        resp = sqlite_client.request(method, concrete(path), headers=auth() | JSON, content=body)
        assert resp.status_code == status, (method, path, kind, resp.text[:300])
        assert_problem(resp, status, code)


def test_an_empty_body_is_malformed_json_wherever_a_body_is_required(
    sqlite_client: TestClient,
) -> None:
    app = sqlite_client.app
    assert isinstance(app, FastAPI)
    for route in body_routes(app):
        field = route.body_field
        if field is not None and not field.field_info.is_required():
            continue
        for method in route.methods:
            resp = sqlite_client.request(
                method, concrete(route.path), headers=auth() | JSON, content=b""
            )
            assert_problem(resp, 400, "malformed_json")


def test_a_body_of_the_wrong_type_is_415_declared_or_chunked(sqlite_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"events": []}'

    for method, path in routes_of(sqlite_client):
        url = concrete(path)
        plain = auth() | {"Content-Type": "text/plain"}
        resp = sqlite_client.request(method, url, headers=plain, content=b'{"events": []}')
        assert_problem(resp, 415, "unsupported_media_type")
        resp = sqlite_client.request(method, url, headers=plain, content=chunks())
        assert_problem(resp, 415, "unsupported_media_type")
        missing = auth() | {"Content-Type": ""}
        resp = sqlite_client.request(method, url, headers=missing, content=b'{"events": []}')
        assert_problem(resp, 415, "unsupported_media_type")


def test_a_body_too_large_is_413_everywhere(sqlite_client: TestClient) -> None:
    big = b'{"a": "' + b"x" * (1024 * 1024) + b'"}'
    for method, path in routes_of(sqlite_client):
        resp = sqlite_client.request(method, concrete(path), headers=auth() | JSON, content=big)
        assert_problem(resp, 413, "payload_too_large")


def test_the_deepest_accepted_nesting_is_32(sqlite_client: TestClient) -> None:
    """32 levels pass the JSON rule (and meet the route's own validation); 33 do not."""
    for depth, code in ((32, "unknown_field"), (33, "json_too_deep")):
        body = b'{"x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        resp = sqlite_client.post("/v1/api-keys", headers=auth() | JSON, content=body)
        assert resp.json()["code"] == code, depth


# (Content-Type headers, accepted): one verdict on the raw-body route and the model routes,
# FastAPI's reading of the media type (application/json or application/*+json).
MEDIA_TYPES = [
    ([("Content-Type", "application/json")], True),
    ([("Content-Type", "Application/JSON; charset=utf-8")], True),
    ([("Content-Type", "application/merge-patch+json")], True),
    ([("Content-Type", "text/x+json")], False),
    ([("Content-Type", "image/svg+json")], False),
    ([("Content-Type", "application/jsonx")], False),
    ([("Content-Type", "text/plain"), ("Content-Type", "application/json")], False),
    ([("Content-Type", "application/json"), ("Content-Type", "text/plain")], False),
    ([("Content-Type", "application/json"), ("Content-Type", "application/json")], False),
]


@pytest.mark.parametrize(("types", "accepted"), MEDIA_TYPES, ids=[str(m[0]) for m in MEDIA_TYPES])
def test_one_media_type_verdict_on_every_body_route(
    sqlite_client: TestClient, types: list[tuple[str, str]], accepted: bool
) -> None:
    """Accepted: the body reaches the route's own checks (here an unknown field, 422 or a
    batch refusal); refused: 415 on every route alike, also with two Content-Type headers."""
    for method, path in routes_of(sqlite_client):
        headers = [*auth().items(), *types]
        resp = sqlite_client.request(method, concrete(path), headers=headers, content=b'{"z": 1}')
        if accepted:
            assert resp.status_code != 415, (method, path, resp.text[:200])
            assert resp.status_code < 500, (method, path, resp.text[:200])
        else:
            assert_problem(resp, 415, "unsupported_media_type")


# The consent check's body, decoded by msgspec (http/bodies.py), against its pydantic model.
_CHECK = BodyDecoder(CheckBody)
_STRINGS = st.text(max_size=3) | st.text(alphabet="ab\x00😀", min_size=30, max_size=70)
_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | _STRINGS
_IDENTITY = st.dictionaries(st.sampled_from(["type", "value", "z"]), _SCALARS, max_size=3)
_REF = st.dictionaries(
    st.sampled_from(["subject_id", "identities", "x"]),
    _SCALARS | st.lists(_IDENTITY | _SCALARS, max_size=2) | _IDENTITY,
    max_size=3,
)
_CHECK_BODIES = st.dictionaries(
    st.sampled_from(["subject", "purpose", "extra", "p\x00"]),
    _SCALARS | _REF | st.lists(_SCALARS, max_size=1),
    max_size=3,
)


def _pydantic_faults(value: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The errors FastAPI raised for a body of the model (it validates with from_attributes)."""
    try:
        CheckIn.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        return [(e["type"], ("body", *e["loc"]), e["msg"]) for e in exc.errors()]
    return []


def _our_faults(value: dict[str, Any]) -> list[tuple[Any, ...]]:
    try:
        _CHECK.decode(json.dumps(value).encode())
    except RequestValidationError as exc:
        return [(e["type"], tuple(e["loc"]), e["msg"]) for e in exc.errors()]
    return []


@given(_CHECK_BODIES)
@example({"subject": {"subject_id": "s" * 64}, "purpose": "😀" * 64})
@example({"subject": {"identities": [{"type": "email", "value": 1, "z": 2}, 5]}, "purpose": 1})
@example({"subject": {"subject_id": "s\x00"}, "purpose": "p", "extra": 1})
def test_the_check_struct_refuses_what_the_check_model_refuses(value: dict[str, Any]) -> None:
    """Accepted by both or refused by both, with the same errors in the same order."""
    assert _our_faults(value) == _pydantic_faults(value)


@pytest.mark.parametrize(
    ("kind", "body", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_the_body_decoder_keeps_the_json_rules(
    kind: str, body: bytes, status: int, code: str
) -> None:
    with pytest.raises(ConsentryError) as refused:
        _CHECK.decode(body)
    assert refused.value.code == code
