"""Types of consentry._core, the PyO3 binding of the native core (core/, built by maturin).
Import it through consentry.native, which names how to build it when it is missing."""

from datetime import datetime
from typing import Any

FORMAT: int
NONCE_LEN: int
EVENT_AAD_PREFIX: bytes

class OpenError(ValueError):
    """A sealed value that does not open: unknown layout, altered blob or AAD, another key."""

class Sealer:
    """AES-256-GCM under one 32-byte key, in the stored format 0x01 || nonce(12) || ct || tag."""

    def __init__(self, key: bytes) -> None: ...
    def seal(self, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
        """Sealed under a fresh nonce from the OS random source, or `nonce` (12 bytes, one of
        nonces(), never used before)."""
    def open(self, blob: bytes, aad: bytes) -> bytes:
        """The plaintext; OpenError when it does not open under this key and `aad`."""

def seal_batch(sealers: list[Sealer], plaintexts: list[bytes], aads: list[bytes]) -> list[bytes]:
    """Each plaintext sealed under its sealer and AAD, in order (GIL released)."""

def seal_events(
    sealers: list[Sealer], plaintexts: list[bytes], event_ids: list[str]
) -> list[bytes]:
    """Each event's personal values sealed under its subject's sealer and event_aad()."""

def nonces(count: int) -> list[bytes]:
    """`count` 12-byte nonces from one read of the OS random source."""

def event_aad(event_id: str) -> bytes:
    """b"consentry:event:" + the event id: what an event's sealed values are bound to."""

class Pseudonymiser:
    """Keyed HMAC-SHA256 pseudonyms under one key, lowercase hex."""

    def __init__(self, key: bytes) -> None: ...
    @staticmethod
    def for_system(secret: bytes, system_id: str) -> Pseudonymiser:
        """Under HMAC(secret, "system:" + system_id): one downstream system's key."""
    def fields(self, fields: list[str], values: list[str]) -> list[str]:
        """HMAC(key, field + "\\0" + value) of each pair, in order (GIL released)."""
    def subjects(self, subject_ids: list[str]) -> list[str]:
        """HMAC(key, subject_id) of each, in order (GIL released)."""
    def subject(self, subject_id: str) -> str:
        """HMAC(key, subject_id)."""

class FieldPlan:
    """Every field of one schema that one (subject, schema) decision keeps: (name, treatment
    (keep, pseudonymise, redact or tokenise), sealed, the purposes it is narrowed to or None),
    and the columns every event of the decision shares."""

    def __init__(
        self,
        fields: list[tuple[str, str, bool, list[str] | None]],
        purposes_json: str,
        purpose_bits: int,
    ) -> None: ...
    @property
    def cached_shapes(self) -> int:
        """How many sets of fields' shapes the plan keeps now (at most 1,024, then cleared)."""

def shape_batch(
    groups: list[tuple[FieldPlan, Sealer, str, str, int] | None],
    order: list[int],
    group_of: list[int],
    events: list[Event | None],
    values: list[dict[str, Any] | None],
    tokens: dict[int, dict[str, str]],
    pseudonyms: Pseudonymiser,
) -> list[tuple[object, ...]]:
    """The rows of the events at `order` (positions in the batch), in that order: each under
    its decision groups[group_of[position]] (field plan, subject's sealer, subject id, event
    type, schema version), from its envelope events[position] and properties values[position],
    its tokenised fields' tokens in tokens[position]. Each plan is narrowed to the fields the
    event has, its values pseudonymised or redacted (each distinct value once), written as
    stored JSON and the personal ones sealed, the GIL released. Each row is
    storage.ingest.EVENT_COLUMNS but received_at: the kept values as stored JSON (sorted keys,
    msgspec's spelling), the personal ones sealed under the event's AAD. ValueError for a value
    stored JSON cannot hold."""

def received(rows: list[tuple[object, ...]], received_at: str) -> list[tuple[object, ...]]:
    """The rows of shape_batch with received_at in its column, after occurred_at."""

def subject_key(subject_id: str) -> int:
    """events.subject_key: 60 bits of the id's random part (characters 4-18, hexadecimal)."""

def redact_many(values: list[str]) -> list[str]:
    """Each value with its PII (e-mail, phone, card, IBAN, IP, SSN, NI number) replaced by
    `<EMAIL>`, `<PHONE>`..., in order; a value holding none comes back as the same object.
    One call per batch, GIL released."""

def redact(value: str) -> str:
    """One value redacted as redact_many does it."""

def find(value: str) -> list[tuple[int, int, str]]:
    """The PII spans of `value`: (start, end, kind name), in code points, in order and not
    overlapping."""

# Decoding an events batch (consentry_core::decode).
MAX_EVENTS: int
AHEAD_MINUTES: int
MAX_JSON_DEPTH: int

class BatchRefused(ValueError):
    """A body refused whole; args are (code, detail), the code one of API.md's."""

class Properties:
    """An event schema compiled for its properties: (name, type, required) per field, in the
    schema's order; the type one of string, integer, number, boolean, timestamp. The strings of
    the `screen` fields are redacted where the recognizers find personal data in them."""

    def __init__(self, fields: list[tuple[str, str, bool]], screen: list[str] = ...) -> None: ...
    def check(
        self, raw: bytes
    ) -> tuple[str | None, str | None, dict[str, Any] | None, list[str] | None]:
        """(None, None, values, redacted) when the properties (JSON text) fit, else (code,
        detail, None, None); `redacted` names the screened fields redacted, or is None."""

class Subject:
    """Who an event is about, as sent."""

    @property
    def subject_id(self) -> str | None: ...
    @property
    def identities(self) -> list[tuple[str, str]] | None: ...

class Event:
    """An event's envelope; `properties` is the JSON text of its properties."""

    @property
    def event_id(self) -> str | None: ...
    @property
    def event_type(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime | None: ...
    @property
    def subject(self) -> Subject | None: ...
    @property
    def consent_token(self) -> str | None: ...
    @property
    def gpc(self) -> bool: ...
    @property
    def properties(self) -> bytes: ...

def decode_batch(
    body: bytes, latest: int, schemas: dict[str, Properties]
) -> tuple[
    bool,
    list[
        tuple[
            str | None,
            str | None,
            Event | None,
            tuple[str | None, str | None, dict[str, Any] | None, list[str] | None] | None,
            tuple[int, int],
        ]
    ],
]:
    """(gpc, one item per event): (event_id, invalid_event detail, event, its properties
    against schemas[event_type], its span in the body). `latest` is the latest occurred_at
    accepted in microseconds since the epoch. BatchRefused when refused whole (GIL released)."""

def decode_event(raw: bytes, latest: int) -> tuple[str | None, str | None, Event | None]:
    """One event alone: (event_id, invalid_event detail, event)."""

def decode_subjects(
    body: bytes,
) -> list[tuple[str | None, list[tuple[str, str]] | None] | None]:
    """Each event's (subject_id, identities), None where it cannot be read; BatchRefused as
    decode_batch refuses a batch before reading its events."""

def event_id_of(raw: bytes) -> str | None:
    """The event_id of an event that does not decode (at most 128 characters)."""

def json_problem(body: bytes) -> tuple[str, str] | None:
    """(code, detail) of the first JSON rule of every route `body` breaks, or None."""
