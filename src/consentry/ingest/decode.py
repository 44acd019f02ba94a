"""Decoding an events batch, in the native core (consentry_core::decode, one call a batch):
the batch refused whole, or each event's envelope or the detail of its `invalid_event`, and
each event's properties against its schema; every refusal with its code and a short detail
naming the field and the rule it breaks, never a value that was sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry import clock, native
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

MAX_EVENTS = native.MAX_EVENTS
# How far ahead of the server's clock an occurred_at may be (API.md, Retention): clocks drift,
# but a later time would stretch the retention counted from it.
MAX_AHEAD = timedelta(minutes=native.AHEAD_MINUTES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Event = native.Event
Subject = native.Subject
# What the core made of one event's properties against its schema: (None, None, values,
# redacted) or (code, detail, None, None); `redacted` names the screened fields whose values
# the core redacted (FieldSpec.screened), or is None.
Checked = tuple[str | None, str | None, dict[str, Any] | None, list[str] | None]
# One event of a batch: its event_id (for its result), the detail of its invalid_event (None
# when it is complete), its envelope (None when it has not the envelope's shape), its
# properties against the schema of its event_type when one was given, and its span in the body.
Item = tuple[str | None, str | None, Event | None, Checked | None, tuple[int, int]]

# What each per-event code means, as the result's `detail` when no field is named.
DETAILS = {
    "invalid_event": (
        "an event needs event_id (at most 128 characters), event_type, occurred_at with a "
        f"time zone (at most {native.AHEAD_MINUTES} minutes ahead of the server's clock), "
        "and subject"
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

# The errors refusing a batch whole, by the code the core gives.
_REFUSALS: dict[str, type[ConsentryError]] = {
    error.code: error
    for error in (
        MalformedJSON,
        InvalidUtf8,
        JsonTooDeep,
        InvalidNumber,
        BodyNotObject,
        InvalidBatch,
        BatchTooLarge,
    )
}
# Their codes: a rule of the body, so a record that alone breaks one is refused for good (the
# stream mode); any other error is the system's and its batch is tried again.
BODY_REFUSALS: frozenset[str] = frozenset(_REFUSALS)


def refusal(refused: native.BatchRefused) -> ConsentryError:
    """The error of a body the core refused whole."""
    code, detail = refused.args
    return _REFUSALS[code](detail)


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch decoded: its own gpc and its events in order."""

    gpc: bool
    items: list[Item]
    body: bytes

    @property
    def events(self) -> list[bytes]:
        """Each event's JSON text."""
        return [self.body[start:end] for *_, (start, end) in self.items]


def batch(
    body: bytes,
    latest: datetime | None = None,
    schemas: Mapping[str, native.Properties] | None = None,
) -> Batch:
    """The batch, or the error refusing it whole: the JSON rules of every route first, then
    the batch's own shape and size, then the JSON rules over each event. `latest` is the
    latest occurred_at accepted (the server's clock plus MAX_AHEAD); each complete event whose
    event_type `schemas` has is checked against it."""
    if latest is None:
        latest = clock.now() + MAX_AHEAD
    try:
        gpc, items = native.decode_batch(body, _micros(latest), dict(schemas or {}))
    except native.BatchRefused as refused:
        raise refusal(refused) from None
    return Batch(gpc, items, body)


def event(raw: bytes, latest: datetime) -> tuple[Event | None, str | None]:
    """One event alone: the event and None, or the event (or None when it has not the
    envelope's shape) and the detail of its `invalid_event`."""
    _event_id, invalid, decoded = native.decode_event(bytes(raw), _micros(latest))
    return decoded, invalid


def event_id_of(raw: bytes) -> str | None:
    """The event_id of an event that does not decode, for its result, if it has one."""
    return native.event_id_of(bytes(raw))


def subjects(body: bytes) -> list[tuple[str | None, list[tuple[str, str]] | None] | None]:
    """Each event's subject reference as (subject_id, identity pairs); None for an event whose
    subject cannot be read (the pipeline refuses it as invalid_event). A batch that cannot be
    read at all raises as `batch` does."""
    try:
        return native.decode_subjects(body)
    except native.BatchRefused as refused:
        raise refusal(refused) from None


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND
