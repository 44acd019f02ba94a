"""Decoding an events batch (msgspec, in C): the batch, each event, each event's properties
against its schema; every refusal with its code and a short detail naming the field and the
rule it breaks, never a value that was sent."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import msgspec

from consentry import clock, jsonlimits
from consentry.errors import BatchTooLarge, BodyNotObject, InvalidBatch, MalformedJSON

MAX_EVENTS = 1000
_MAX_EVENT_ID = 128
# A key sent by a client is named in a detail only when it looks like a field name.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_AT = re.compile(r" - at `\$\.?(.*)`$")
_EXPECTED = re.compile(r"Expected `([^`]*)`, got `([^`]*)`")
# How far ahead of the server's clock an occurred_at may be (API.md, Retention): clocks drift,
# but a later time would stretch the retention counted from it.
MAX_AHEAD = timedelta(minutes=5)
_AHEAD_MINUTES = int(MAX_AHEAD.total_seconds() // 60)

# What each per-event code means, as the result's `detail` when no field is named.
DETAILS = {
    "invalid_event": (
        "an event needs event_id (at most 128 characters), event_type, occurred_at with a "
        f"time zone (at most {_AHEAD_MINUTES} minutes ahead of the server's clock), and subject"
    ),
    "unknown_event_type": "no schema for this event_type",
    "duplicate_event": "this event_id is already stored, or was accepted earlier in the batch",
    "unknown_field": "a property the schema does not have",
    "missing_field": "a property the schema requires is missing",
    "invalid_field": "a property does not fit its type in the schema",
    "subject_erased": "the subject has been erased",
    "restricted": "processing of the subject's data is restricted (Art. 18)",
    "invalid_consent_token": "consent_token is not a valid consent token for this subject",
    "expired_consent_token": "consent_token has expired",
    "stale_consent_token": "consent_token's version is behind the subject's consent ledger",
    "eprivacy_consent_required": (
        "a subject known only by cookie_id or device_id needs consent for a purpose that is "
        "not strictly necessary (ePrivacy Art. 5(3))"
    ),
    "expired_consent": "the subject's consent to the schema's purposes has expired",
    "no_consent": "the subject allows none of the schema's purposes",
}


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
    """The batch, or the error refusing it whole: the JSON rules of every route first
    (consentry.jsonlimits), then the batch's own shape."""
    if not body.strip():
        raise MalformedJSON("the body is empty: send a JSON object")
    jsonlimits.check_utf8(body)
    try:
        decoded = _BATCH.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        problem = jsonlimits.problem_of(body)
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
    """The event and None, or None and the detail of its `invalid_event`; `latest` is the
    latest occurred_at accepted (the server's clock plus MAX_AHEAD)."""
    try:
        decoded = _EVENT.decode(raw)
    except msgspec.ValidationError as exc:
        return None, describe(str(exc), "")[1]
    except (msgspec.DecodeError, RecursionError):
        return None, "the event is not a JSON object the API can read"
    return decoded, incomplete(decoded, latest)


def incomplete(event: Event, latest: datetime) -> str | None:
    """Why the event lacks its id, type, time (with a zone, not after `latest`) or subject,
    or None (API.md: invalid_event)."""
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
    return _out_of_range(at, latest)


def _out_of_range(at: datetime, latest: datetime) -> str | None:
    reason = clock.unstorable(at)
    if reason is None and at > latest:
        reason = f"is more than {_AHEAD_MINUTES} minutes ahead of the server's clock"
    return None if reason is None else f"occurred_at {reason}"


def event_id_of(raw: msgspec.Raw) -> str | None:
    """The event_id of an event that does not decode, for its result, if it has one."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None
    if isinstance(value, dict) and isinstance(value.get("event_id"), str):
        return str(value["event_id"])[:_MAX_EVENT_ID]
    return None


def describe(message: str, where: str) -> tuple[str, str]:
    """(code, detail) of a msgspec validation message: unknown_field, missing_field or
    invalid_field, the detail naming the field and the rule. msgspec's messages name types,
    limits and paths, not values; a key the schema does not have is never repeated."""
    at = _AT.search(message)
    text = message[: at.start()] if at else message
    path = _join(where, at.group(1) if at else "")
    if text.startswith(_UNKNOWN):
        # The key was sent by the client and may itself be personal (a name used as a key):
        # never repeated, only where it is.
        return "unknown_field", f"{path or 'the event'}: a property not in the schema"
    if text.startswith(_MISSING):
        # A missing key is one of the schema's own field names.
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


# msgspec's messages that name a key.
_UNKNOWN = "Object contains unknown field `"
_MISSING = "Object missing required field `"
_RULES = (
    ("Invalid RFC3339", "expected an RFC 3339 time with a time zone"),
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
    """An event read for its subject alone (what a browser key's batch is scoped by)."""

    subject: Ref | None = None


_SUBJECTED = msgspec.json.Decoder(_Subjected)


def subjects(body: bytes) -> list[tuple[str | None, list[tuple[str, str]] | None] | None]:
    """Each event's subject reference as (subject_id, identity pairs); None for an event whose
    subject cannot be read (the pipeline refuses it as invalid_event). A batch that cannot be
    read at all raises as `batch` does."""
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
