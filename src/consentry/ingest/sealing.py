"""An event's personal values in `events.sealed`: the associated data that binds a sealed blob
to its event, and opening it again (reads, access reports) under the subject's data key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from consentry import native
from consentry.keys.envelope import Sealer

_DECODE = msgspec.json.Decoder(dict[str, Any])
# The associated data of an event's blob is this prefix and the event id (see event_aad).
AAD_PREFIX = native.EVENT_AAD_PREFIX


def event_aad(event_id: str) -> bytes:
    """What a sealed blob is bound to (b"consentry:event:" and the id, core/src/seal.rs): moved
    to another event, it no longer opens."""
    return native.event_aad(event_id)


def seal_events(
    sealers: Sequence[Sealer], plaintexts: list[bytes], event_ids: list[str]
) -> list[bytes]:
    """Each event's personal values sealed under its subject's key and its event_aad, in one
    call to the core (nonces drawn there, in one read of the OS random source)."""
    return native.seal_events([s.native for s in sealers], plaintexts, event_ids)


def open_values(sealer: Sealer, blob: bytes, event_id: str) -> dict[str, Any]:
    """The event's sealed values (as the pipeline stored them: JSON, sorted keys); raises
    KeyUnwrapFailed when the blob does not open under `sealer` for this event."""
    return _DECODE.decode(sealer.open(blob, event_aad(event_id)))
