"""The JSON the product accepts, on every route and in the event pipeline: one rule, one code per
kind of bad input (UTF-8, syntax, nesting depth, numbers)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from consentry.errors import ConsentryError, InvalidNumber, InvalidUtf8, JsonTooDeep, MalformedJSON

# Objects and arrays inside each other; the deepest body the API defines has 6 levels.
MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


class _NonFinite(Exception):
    """Python's json module met NaN, Infinity or -Infinity (msgspec refuses them as syntax)."""


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
    value, error = _decode(body)
    if error is not None:
        raise error
    return value


def problem_of(body: bytes) -> ConsentryError | None:
    """What is wrong with `body` as a JSON document, or None when it is acceptable. The rules,
    in the order they are tested: empty, not UTF-8, not JSON (or a lone surrogate escape, or
    NaN/Infinity), nested deeper than MAX_DEPTH, a number beyond a double or an integer beyond
    signed 64 bits."""
    return _decode(body)[1]


def _decode(body: bytes) -> tuple[Any, ConsentryError | None]:
    if not body.strip():
        return None, MalformedJSON("the body is empty: send a JSON object")
    try:
        check_utf8(body)
    except InvalidUtf8 as exc:
        return None, exc
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        return None, _too_deep()
    except msgspec.ValidationError:
        # An untyped decode refuses only numbers: a float beyond a double, a huge integer.
        return None, InvalidNumber("a number is beyond the range of a 64-bit float or integer")
    except msgspec.DecodeError:
        return None, _why_malformed(body)
    return value, _check_value(value)


def _check_value(value: Any) -> ConsentryError | None:
    """Too deep first (the walk stops there), else the first integer out of range."""
    number: ConsentryError | None = None
    if type(value) is int and not INT_MIN <= value <= INT_MAX:
        number = _big_int()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return _too_deep()
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif number is None and type(child) is int and not INT_MIN <= child <= INT_MAX:
                number = _big_int()
    return number


def _why_malformed(body: bytes) -> ConsentryError:
    """msgspec said no; Python's parser tells the kinds apart (this path is rare)."""

    def non_finite(_name: str) -> Any:
        raise _NonFinite

    try:
        value = json.loads(body, parse_constant=non_finite)
    except _NonFinite:
        return InvalidNumber("NaN and Infinity are not JSON numbers")
    except RecursionError:
        return _too_deep()
    except json.JSONDecodeError as exc:
        return MalformedJSON(f"the body is not valid JSON (line {exc.lineno}, column {exc.colno})")
    except ValueError:
        # An integer too long for Python to read (over 4,300 digits).
        return _big_int()
    found = _check_value(value)
    if found is None and _has_lone_surrogate(value):
        found = InvalidUtf8("a string holds a lone surrogate escape: it is not UTF-8")
    return found or MalformedJSON("the body is not valid JSON")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_deep() -> JsonTooDeep:
    return JsonTooDeep(f"objects and arrays nest at most {MAX_DEPTH} levels deep")


def _big_int() -> InvalidNumber:
    return InvalidNumber("an integer is beyond signed 64 bits")
