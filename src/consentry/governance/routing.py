"""Where an accepted event goes in the data map: to each system sharing a purpose with it,
carrying the fields of a category the system declares (System.declares), each shown only to
the purposes it may serve; through the outbox, except to a consumer of a consented topic,
which reads the stream mode's records of its purpose instead. One rule for the outbox
(delivery/outbox.py), the stream (stream/replica.py) and lineage (governance/lineage.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consentry.governance import consented
from consentry.governance.models import System


def shared(system: System, purposes: Iterable[str]) -> list[str]:
    """The purposes of `purposes` (in their order) that `system` serves: an event stored for
    them is delivered to it, naming these, when there is at least one."""
    served = system.purposes
    return [p for p in purposes if p in served]


def field_serving(only: Sequence[str] | None, shared_purposes: Sequence[str]) -> list[str] | None:
    """The shared purposes a field of a delivery is shown to: None for every one of them (a
    field the event may show to all its purposes), else those of `only` (the purposes the
    field is narrowed to) among them; an empty list: the field is left out. A caller on the
    hot path may skip the call when `only` is None."""
    if only is None:
        return None
    return [p for p in only if p in shared_purposes]


def queued(system: System) -> bool:
    """Whether the outbox queues deliveries to the system: not to a consumer of a consented
    topic (governance/consented.py), whose records the stream mode produces, under the same
    gates, for the events it decides (`consumers_of`)."""
    return consented.consumed(system) is None


def consumes(system: System) -> str | None:
    """The purpose whose consented topic the system consumes: its endpoint names the topic and
    the purpose is among its purposes (the data map refuses one that does not serve it; a
    definition stored before that rule is no consumer: it would read records of a purpose it
    may not serve). None for any other system."""
    purpose = consented.consumed(system)
    return purpose if purpose is not None and purpose in system.purposes else None


def consumers_of(systems: Iterable[System], purpose: str) -> list[System]:
    """The systems consuming the consented topic of `purpose` (`consumes`)."""
    return [s for s in systems if consumes(s) == purpose]
