"""An event's personal values in `events.sealed`: the associated data that binds a sealed blob
to its event, and opening it again (reads, access reports) under the subject's data key."""

from __future__ import annotations

from typing import Any

import msgspec

from consentry.keys.envelope import Sealer

_DECODE = msgspec.json.Decoder(dict[str, Any])
# The associated data of an event's blob is this prefix and the event id (see event_aad).
AAD_PREFIX = b"consentry:event:"


def event_aad(event_id: str) -> bytes:
    """What a sealed blob is bound to: moved to another event, it no longer opens."""
    return AAD_PREFIX + event_id.encode()


def open_values(sealer: Sealer, blob: bytes, event_id: str) -> dict[str, Any]:
    """The event's sealed values (as the pipeline stored them: JSON, sorted keys); raises
    KeyUnwrapFailed when the blob does not open under `sealer` for this event."""
    return _DECODE.decode(sealer.open(blob, event_aad(event_id)))
