"""What a stream batch reads and writes: the raw records screened (one that is not an event's
JSON is refused on its own, never the batch), the events body the pipeline is handed, and the
records of its outcome (API.md, Stream mode)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import msgspec
from confluent_kafka import Message

from consentry import jsonlimits
from consentry.delivery.outbox import Pseudonyms, for_purpose
from consentry.ingest.pipeline import EventResult
from consentry.ingest.ports import AcceptedEvent
from consentry.stream import topics

_JSON = msgspec.json.Encoder()


class _Id(msgspec.Struct):
    event_id: object = None


_ID = msgspec.json.Decoder(_Id)


@dataclass(frozen=True, slots=True)
class Out:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    # The subject a consented record is about (never produced: its mark, stream_marks).
    subject_id: str | None = None


@dataclass(slots=True)
class Screened:
    """A batch's raw records: those handed to the pipeline (in order), and those refused
    before it, each with its code."""

    events: list[Message]
    refused: list[tuple[Message, str | None, str]]

    def body(self) -> bytes:
        """The events as one `POST /v1/events` body."""
        return b'{"events":[' + b",".join(_value(m) for m in self.events) + b"]}"


def screen(messages: Sequence[Message]) -> Screened:
    """Records whose value is JSON within the rules of every route go to the pipeline (which
    judges whether each is an event); the rest are refused with the rule's code."""
    screened = Screened([], [])
    for message in messages:
        value = message.value()
        if not value:
            screened.refused.append((message, None, "invalid_event"))
            continue
        problem = jsonlimits.problem_of(_value(message))
        if problem is not None:
            screened.refused.append((message, None, problem.code))
        else:
            screened.events.append(message)
    return screened


def refused(event_id: str | None, code: str) -> Out:
    """`{"event_id", "code"}` on the refused topic, keyed by the event id (or not at all): the
    raw record's key may be personal data (an e-mail address) and is never copied."""
    key = None if event_id is None else event_id.encode()
    return Out(topics.REFUSED, key, _JSON.encode({"event_id": event_id, "code": code}))


def event_id_of(message: Message) -> str | None:
    """The event_id of a record refused as a whole, when it names a string one."""
    try:
        found = _ID.decode(_value(message)).event_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return found if isinstance(found, str) else None


def outcome(
    events: Sequence[Message],
    results: Sequence[EventResult],
    accepted: Sequence[AcceptedEvent],
    pseudonyms: Pseudonyms,
    admitted: Container[tuple[str, str]],
    declares: Callable[[str, str], bool] | None = None,
) -> list[Out]:
    """The pipeline's answer as records: each accepted event on the consented topic of every
    purpose it was stored for whose (subject, purpose) pair is `admitted` (keyed by the
    subject's pseudonym on that topic) with the fields of a category `declares(purpose,
    category)` allows, each refused one's code on the refused topic. `accepted` is read only
    when something is admitted."""
    out = []
    stored = iter(accepted)
    # Most batches hold several events of one subject: each pseudonym is computed once.
    names: dict[tuple[str, str], str] = {}
    shown: dict[str, Callable[[str], bool]] = {}
    for _message, result in zip(events, results, strict=True):
        if result.code is not None:
            out.append(refused(result.event_id, result.code))
            continue
        if not admitted:
            continue
        event = next(stored)
        for purpose in event.purposes:
            if (event.subject_id, purpose) not in admitted:
                # Stored, but no consumer may read it there (delivery/consumers.py).
                continue
            topic = topics.consented(purpose)
            pseudonym = names.get((topic, event.subject_id))
            if pseudonym is None:
                pseudonym = names[(topic, event.subject_id)] = pseudonyms.of_topic(
                    topic, event.subject_id
                )
            declared = None
            if declares is not None:
                declared = shown.get(purpose)
                if declared is None:
                    declared = shown[purpose] = functools.partial(declares, purpose)
            value = _JSON.encode(for_purpose(event, purpose, pseudonym, declared))
            out.append(Out(topic, pseudonym.encode(), value, event.subject_id))
    return out


def _value(message: Message) -> bytes:
    value = message.value()
    return value if isinstance(value, bytes) else (value or "").encode()
