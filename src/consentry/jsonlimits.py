"""The JSON the product accepts, on every route and in the event pipeline: one rule, one code per
kind of bad input (UTF-8, syntax, nesting depth, numbers). The rules are the native core's
(consentry_core::decode::json), which the events batch decoder applies too."""

from __future__ import annotations

from typing import Any

import msgspec

from consentry import native
from consentry.errors import ConsentryError, InvalidNumber, InvalidUtf8, JsonTooDeep, MalformedJSON

# Objects and arrays inside each other; the deepest body the API defines has 6 levels.
MAX_DEPTH = native.MAX_JSON_DEPTH
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

_ERRORS: dict[str, type[ConsentryError]] = {
    error.code: error for error in (MalformedJSON, InvalidUtf8, JsonTooDeep, InvalidNumber)
}


def check_utf8(body: bytes) -> None:
    """InvalidUtf8 unless `body` is UTF-8; an ASCII body (most are) costs one C scan."""
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUtf8(f"the body is not UTF-8 (byte {exc.start})") from None


def decode(body: bytes) -> Any:
    """The JSON value of `body`; the error of the first rule it breaks (see `problem_of`)."""
    problem = problem_of(body)
    if problem is not None:
        raise problem
    return msgspec.json.decode(body)


def problem_of(body: bytes) -> ConsentryError | None:
    """What is wrong with `body` as a JSON document, or None when it is acceptable. The rules,
    in the order they are tested: empty, not UTF-8, not JSON (or a lone surrogate escape, or
    NaN/Infinity), nested deeper than MAX_DEPTH, a number beyond a double or an integer beyond
    signed 64 bits."""
    found = native.json_problem(body)
    if found is None:
        return None
    code, detail = found
    return _ERRORS[code](detail)
