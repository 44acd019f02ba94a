"""The port through which the pipeline hands accepted events on (delivery implements it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec
from sqlalchemy import Connection

from consentry.consent.models import Purpose, SubjectConsent


# A struct, not a dataclass: one is built per accepted event when the data map has systems;
# gc=False keeps them out of the collector (nothing they hold refers back to them).
class AcceptedEvent(msgspec.Struct, frozen=True, gc=False):
    """One accepted event as it was stored: what a recipient may be sent of it."""

    event_id: str
    event_type: str
    occurred_at: datetime
    subject_id: str
    # The purposes the event was stored for.
    purposes: Sequence[str]
    # Every kept field with the purposes it may be shown to (None: all of the event's).
    fields: Mapping[str, list[str] | None]
    # The kept values, treated, in clear (personal ones are sealed again for each recipient).
    values: Mapping[str, object]
    # The schema's data category of each field, and its fields of sensitive personal
    # information (CCPA): the same mappings for every event of one schema.
    categories: Mapping[str, str]
    sensitive: frozenset[str]
    # Its fields stored sealed under the subject's key (FieldSpec.sealed): personal values
    # in clear here, never to leave the gateway unsealed.
    sealed: frozenset[str]


class Deliveries(Protocol):
    def enqueue(
        self,
        conn: Connection,
        accepted: Sequence[AcceptedEvent],
        *,
        version: int,
        states: Mapping[str, SubjectConsent],
        purposes: Mapping[str, Purpose],
    ) -> None:
        """Queue deliveries of the accepted events in the caller's transaction (the one that
        stores them). `version`: the configuration version the batch was decided at;
        `states`: each subject's consent as the batch read it; `purposes`: every purpose.
        Each event of `accepted` is built as it is read: a port with nowhere to deliver them
        returns without reading them."""
        ...
