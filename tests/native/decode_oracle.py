"""The oracle for the native core's batch decoding (consentry_core::decode): the msgspec
implementation Consentry used before the core, whole: the batch, each event's envelope, each
event's properties against a msgspec Struct compiled from the schema, `describe` turning
msgspec's messages into API.md's codes and details, the JSON rules of every route
(jsonlimits) and the pipeline's certification of events that did not decode whole. Only
tests use it; the product calls the core (consentry.native).

One rule is the core's own and is added here: a timestamp property needs a time zone (msgspec
took a naive one)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from consentry.errors import (
    BatchTooLarge,
    BodyNotObject,
    ConsentryError,
    InvalidBatch,
    InvalidNumber,
    InvalidUtf8,
    JsonTooDeep,
    MalformedJSON,
)

MAX_EVENTS = 1000
MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
MIN_YEAR = 1000
_MAX_EVENT_ID = 128
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_AT = re.compile(r" - at `\$\.?(.*)`$")
_EXPECTED = re.compile(r"Expected `([^`]*)`, got `([^`]*)`")
MAX_AHEAD = timedelta(minutes=5)
_AHEAD_MINUTES = 5


# --- jsonlimits: the JSON rules of every route -------------------------------------------


class _NonFinite(Exception):
    pass


def check_utf8(body: bytes) -> None:
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUtf8(f"the body is not UTF-8 (byte {exc.start})") from None


def problem_of(body: bytes) -> ConsentryError | None:
    if not body.strip():
        return MalformedJSON("the body is empty: send a JSON object")
    try:
        check_utf8(body)
    except InvalidUtf8 as exc:
        return exc
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        return _too_deep()
    except msgspec.ValidationError:
        return InvalidNumber("a number is beyond the range of a 64-bit float or integer")
    except msgspec.DecodeError:
        return _why_malformed(body)
    return _check_value(value)


def _check_value(value: Any) -> ConsentryError | None:
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


# --- the batch and each event's envelope --------------------------------------------------


class Identity(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    value: str


class Ref(msgspec.Struct, forbid_unknown_fields=True):
    subject_id: str | None = None
    identities: list[Identity] | None = None


class Event(msgspec.Struct, forbid_unknown_fields=True):
    event_id: str | None = None
    event_type: str | None = None
    occurred_at: datetime | None = None
    subject: Ref | None = None
    consent_token: str | None = None
    properties: msgspec.Raw = msgspec.Raw(b"{}")
    gpc: bool = False


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[msgspec.Raw]
    gpc: bool = False


_BATCH = msgspec.json.Decoder(Batch)
_EVENT = msgspec.json.Decoder(Event)


def batch(body: bytes) -> Batch:
    if not body.strip():
        raise MalformedJSON("the body is empty: send a JSON object")
    check_utf8(body)
    try:
        decoded = _BATCH.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        problem = problem_of(body)
        if problem is not None:
            raise problem from None
        if not body.lstrip().startswith(b"{"):
            raise BodyNotObject("the body must be a JSON object") from None
        _code, detail = describe(str(exc), "")
        raise InvalidBatch(f'an events batch is {{"events": [...]}}: {detail}') from None
    if len(decoded.events) > MAX_EVENTS:
        raise BatchTooLarge(f"at most {MAX_EVENTS} events a batch, not {len(decoded.events)}")
    return decoded


def event(raw: msgspec.Raw, latest: datetime) -> tuple[Event | None, str | None]:
    try:
        decoded = _EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        return None, describe(str(exc), "")[1]
    except (msgspec.DecodeError, RecursionError):
        return None, "the event is not a JSON object the API can read"
    return decoded, incomplete(decoded, latest)


def unstorable(moment: datetime) -> str | None:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return "has no UTC form within the years 1-9999"
    if utc.year < MIN_YEAR:
        return f"is before the year {MIN_YEAR}"
    return None


def incomplete(event: Event, latest: datetime) -> str | None:
    event_id, event_type, at = event.event_id, event.event_type, event.occurred_at
    if not event_id:
        return "event_id is missing"
    if len(event_id) > _MAX_EVENT_ID or "\x00" in event_id:
        return f"event_id is 1-{_MAX_EVENT_ID} characters, without NUL"
    if not event_type or "\x00" in event_type:
        return "event_type is missing"
    if event.subject is None:
        return "subject is missing"
    if at is None or at.tzinfo is None:
        return "occurred_at is missing or has no time zone"
    reason = unstorable(at)
    if reason is None and at > latest:
        reason = f"is more than {_AHEAD_MINUTES} minutes ahead of the server's clock"
    return None if reason is None else f"occurred_at {reason}"


def event_id_of(raw: msgspec.Raw) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None
    if isinstance(value, dict) and isinstance(value.get("event_id"), str):
        return str(value["event_id"])[:_MAX_EVENT_ID]
    return None


def describe(message: str, where: str) -> tuple[str, str]:
    at = _AT.search(message)
    text = message[: at.start()] if at else message
    path = _join(where, at.group(1) if at else "")
    if text.startswith(_UNKNOWN):
        return "unknown_field", f"{path or 'the event'}: a property not in the schema"
    if text.startswith(_MISSING):
        name = text.split("`")[1]
        field = _join(path, name) if _NAME.fullmatch(name) else _join(path, "a field")
        return "missing_field", f"{field} is required"
    subject = path or "the value"
    expected = _EXPECTED.fullmatch(text)
    if expected:
        wanted = expected.group(1).replace(" | null", "")
        return "invalid_field", f"{subject}: expected {wanted}, got {expected.group(2)}"
    rule = next((r for prefix, r in _RULES if text.startswith(prefix)), "does not fit its type")
    return "invalid_field", f"{subject}: {rule}"


_UNKNOWN = "Object contains unknown field `"
_MISSING = "Object missing required field `"
_RULES = (
    ("Invalid RFC3339", "expected an RFC 3339 time with a time zone"),
    # The core's own rule (see the module's docstring).
    ("Expected `datetime` with a timezone", "expected an RFC 3339 time with a time zone"),
    ("Expected `int` <=", "an integer beyond signed 64 bits"),
    ("Expected `int` >=", "an integer beyond signed 64 bits"),
    ("Integer value out of range", "an integer beyond signed 64 bits"),
    ("Number out of range", "a number beyond the range of a 64-bit float"),
)


def _join(left: str, right: str) -> str:
    if not left:
        return right
    if not right:
        return left
    return f"{left}{right}" if right.startswith("[") else f"{left}.{right}"


class _Subjected(msgspec.Struct):
    subject: Ref | None = None


_SUBJECTED = msgspec.json.Decoder(_Subjected)


def subjects(body: bytes) -> list[tuple[str | None, list[tuple[str, str]] | None] | None]:
    out: list[tuple[str | None, list[tuple[str, str]] | None] | None] = []
    for raw in batch(body).events:
        try:
            ref = _SUBJECTED.decode(raw).subject
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            out.append(None)
            continue
        if ref is None:
            out.append(None)
            continue
        pairs = None if ref.identities is None else [(i.type, i.value) for i in ref.identities]
        out.append((ref.subject_id, pairs))
    return out


# --- properties against a schema ----------------------------------------------------------

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)],
    "number": float,
    "boolean": bool,
    "timestamp": Annotated[datetime, msgspec.Meta(tz=True)],
}


@dataclass(frozen=True)
class Schema:
    """A schema's fields, (name, type, required), compiled into a msgspec decoder."""

    fields: tuple[tuple[str, str, bool], ...]
    decoder: msgspec.json.Decoder[Any]


def compile_schema(fields: list[tuple[str, str, bool]]) -> Schema:
    struct_fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, kind, required in fields:
        if required:
            struct_fields.append((name, _TYPES[kind]))
        else:
            struct_fields.append((name, _TYPES[kind] | None, None))
    struct = msgspec.defstruct(
        "Properties", struct_fields, forbid_unknown_fields=True, kw_only=True
    )
    return Schema(tuple(fields), msgspec.json.Decoder(struct))


Checked = tuple[str | None, str | None, dict[str, Any] | None]


def check(schema: Schema, raw: bytes) -> Checked:
    # API.md's order, which msgspec alone does not keep (it reports the first problem in the
    # document): unknown_field, then missing_field, then invalid_field.
    try:
        sent = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        sent = None
    if isinstance(sent, dict):
        names = [name for name, _kind, _required in schema.fields]
        if any(key not in names for key in sent):
            return "unknown_field", "properties: a property not in the schema", None
        for name, _kind, required in schema.fields:
            if required and name not in sent:
                return "missing_field", f"properties.{name} is required", None
    try:
        decoded = schema.decoder.decode(raw)
    except msgspec.ValidationError as exc:
        code, detail = describe(str(exc), "properties")
        return code, detail, None
    except (msgspec.DecodeError, RecursionError):
        return "invalid_field", "properties is not a JSON object the schema can read", None
    values = {k: v for k, v in msgspec.structs.asdict(decoded).items() if v is not None}
    return None, None, values


# --- a batch as the pipeline decoded it ---------------------------------------------------


def decode_batch(
    body: bytes, latest: datetime, schemas: dict[str, Schema]
) -> (
    ConsentryError | tuple[bool, list[tuple[str | None, str | None, Event | None, Checked | None]]]
):
    """What the pipeline made of a batch before the core: the error refusing it whole, or its
    gpc and each event's (event_id, invalid_event detail, envelope, properties checked)."""
    try:
        decoded = batch(body)
    except ConsentryError as refused:
        return refused
    items: list[tuple[str | None, str | None, Event | None, Checked | None]] = []
    for raw in decoded.events:
        found, detail = event(raw, latest)
        if found is None:
            items.append((event_id_of(raw), detail, None, None))
            continue
        checked = None
        schema = schemas.get(str(found.event_type))
        if detail is None and schema is not None:
            checked = check(schema, bytes(found.properties))
        items.append((found.event_id, detail, found, checked))
    # The pipeline's certification: the JSON rules over each event not decoded whole.
    for raw, (_id, _detail, _found, checked) in zip(decoded.events, items, strict=True):
        if checked is None or checked[2] is None:
            problem = problem_of(bytes(raw))
            if problem is not None:
                return problem
    return decoded.gpc, items
