"""Request bodies of the hot paths, decoded by msgspec from the raw body: the JSON rules of every
route (consentry.jsonlimits), then the body's Struct; a body that does not fit is refused with
the very errors FastAPI gives for a pydantic body (http/schemas.Body), so the problem+json,
its code and its `errors` are the same whichever way a route reads its body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import msgspec
from fastapi.exceptions import RequestValidationError
from msgspec import inspect

from consentry import jsonlimits
from consentry.errors import BodyNotObject, ConsentryError, MalformedJSON
from consentry.http.schemas import UNSTORABLE, unstorable

T = TypeVar("T")
Loc = tuple[str | int, ...]
# Where in the body, and (pydantic's error type, its message).
Fault = tuple[Loc, tuple[str, str]]

# pydantic's words for each rule a Struct of ours can break (http/errors.py shows them).
_MISSING = ("missing", "Field required")
_EXTRA = ("extra_forbidden", "Extra inputs are not permitted")
_NOT_STR = ("string_type", "Input should be a valid string")
_NOT_LIST = ("list_type", "Input should be a valid list")
_UNSTORABLE = ("value_error", f"Value error, {UNSTORABLE}")
_NOT_OBJECT = (
    "model_attributes_type",
    "Input should be a valid dictionary or object to extract fields from",
)


class BodyDecoder(Generic[T]):
    """Decodes a JSON body into `kind`, a msgspec Struct with `forbid_unknown_fields`, whose
    fields are strings (with a max_length), lists, optional values and Structs alike: the
    shapes the pydantic model it stands for declares, field for field."""

    def __init__(self, kind: type[T]) -> None:
        self._decoder = msgspec.json.Decoder(kind)
        self._info = inspect.type_info(kind)

    def decode(self, body: bytes) -> T:
        """The body as `kind`; raises what a pydantic body route raises for the same bytes."""
        if not body.strip():
            raise MalformedJSON("the body is empty: send a JSON object")
        jsonlimits.check_utf8(body)
        try:
            value = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            raise self._refusal(body) from None
        # A NUL can only come as an escape; a scan of the bytes spares the walk of every body.
        if b"\\u0000" in body and unstorable(msgspec.json.decode(body)):
            raise _invalid([(("body",), _UNSTORABLE)])
        return value

    def _refusal(self, body: bytes) -> Exception:
        """Why the body did not decode, in the order a pydantic route finds it: the JSON rules,
        an object, storable strings, then every field's fault at once."""
        problem: ConsentryError | None = jsonlimits.problem_of(body)
        if problem is not None:
            return problem
        value = msgspec.json.decode(body)
        if not isinstance(value, dict):
            return BodyNotObject("the body must be a JSON object")
        if unstorable(value):
            return _invalid([(("body",), _UNSTORABLE)])
        return _invalid(_faults(self._info, value, ("body",)))


def _invalid(faults: Sequence[Fault]) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": loc, "msg": message} for loc, (kind, message) in faults]
    )


def _faults(info: inspect.Type, value: Any, loc: Loc) -> list[Fault]:
    """Every rule of `info` that `value` breaks, in pydantic's order: a Struct's fields as
    declared, then its unknown keys."""
    if isinstance(info, inspect.UnionType):
        if value is None and any(isinstance(t, inspect.NoneType) for t in info.types):
            return []
        (info,) = (t for t in info.types if not isinstance(t, inspect.NoneType))
    if isinstance(info, inspect.StructType):
        return _struct_faults(info, value, loc)
    if isinstance(info, inspect.ListType):
        if not isinstance(value, list):
            return [(loc, _NOT_LIST)]
        return [f for n, item in enumerate(value) for f in _faults(info.item_type, item, (*loc, n))]
    if isinstance(info, inspect.StrType):
        return _str_faults(info, value, loc)
    raise TypeError(f"a body Struct may not hold {type(info).__name__}")


def _struct_faults(info: inspect.StructType, value: Any, loc: Loc) -> list[Fault]:
    if not isinstance(value, dict):
        return [(loc, _NOT_OBJECT)]
    found: list[Fault] = []
    for field in info.fields:
        if field.encode_name in value:
            found += _faults(field.type, value[field.encode_name], (*loc, field.encode_name))
        elif field.required:
            found.append(((*loc, field.encode_name), _MISSING))
    if info.forbid_unknown_fields:
        known = {field.encode_name for field in info.fields}
        found += [((*loc, key), _EXTRA) for key in value if key not in known]
    return found


def _str_faults(info: inspect.StrType, value: Any, loc: Loc) -> list[Fault]:
    if not isinstance(value, str):
        return [(loc, _NOT_STR)]
    most = info.max_length
    if most is not None and len(value) > most:
        unit = "character" if most == 1 else "characters"
        return [(loc, ("string_too_long", f"String should have at most {most} {unit}"))]
    return []
