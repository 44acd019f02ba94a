"""The stream mode's consented topics as the data map sees them (API.md, Stream mode): their
names, the registered `kind: kafka` systems that consume them, and how long one keeps a
record. The one home of each: the stream (which creates and writes the topics), routing (which
keeps the outbox off a consumer) and requests (which wait for a topic's retention) read them
here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from consentry.consent.models import Purpose
from consentry.governance.endpoints import kafka_endpoint
from consentry.governance.models import System, SystemKind

PREFIX = "consentry.consented."
_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS


def topic(purpose: str) -> str:
    """The consented topic of a purpose."""
    return PREFIX + purpose


def purpose_of(name: str) -> str | None:
    """The purpose whose consented topic `name` is, or None for any other topic."""
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        return None
    return name.removeprefix(PREFIX)


def consumed(system: System) -> str | None:
    """The purpose whose consented topic the system consumes: a `kind: kafka` system whose
    endpoint names `consentry.consented.<purpose>` (its host and port name the stream
    cluster, as the consumer reaches it; Consentry never sends to it: the stream produces
    those records). None for every other system."""
    if system.kind is not SystemKind.KAFKA:
        return None
    try:
        name = kafka_endpoint(system.endpoint).topic
    except ValueError:
        return None
    return purpose_of(name)


def retention_ms(hours: int, retention_days: int) -> int:
    """`retention.ms` of a consented topic: CONSENTRY_KAFKA_RETENTION_HOURS, never more than the
    purpose's own retention (a transport, not a store)."""
    return min(hours * _HOUR_MS, max(retention_days, 1) * _DAY_MS)


def segment_ms(hours: int, retention_days: int) -> int:
    """`segment.ms` of a consented topic: an hour, or its retention when shorter. Kafka deletes
    a closed segment once its newest record is past `retention.ms`; a segment left open as
    long as the default (7 days) would keep a record up to twice the retention."""
    return min(_HOUR_MS, retention_ms(hours, retention_days))


def config(hours: int, purpose: Purpose | None) -> dict[str, str]:
    """The configuration a consented topic is created and kept with; a purpose not known (any
    more) counts as kept a day."""
    days = _days(purpose)
    return {
        "retention.ms": str(retention_ms(hours, days)),
        "segment.ms": str(segment_ms(hours, days)),
    }


def lifetime(config: Mapping[str, str], deadline: timedelta) -> timedelta:
    """How long after `at` a record produced from `at` on, within `deadline` (the producer's
    delivery deadline: its CreateTime, which retention reads, is at most that late), may
    still be on a consented topic kept with `config` (as applied to it): its retention, the
    segment it sits in rolling, and a margin of the deadline and the broker's retention check
    (`log.retention.check.interval.ms`, 5 minutes by default). Requests wait this long after
    a subject's latest record there (the writer stores the time with its mark)."""
    retention = int(config["retention.ms"])
    segment = int(config.get("segment.ms", retention))
    return timedelta(milliseconds=retention + segment) + margin(deadline)


def margin(deadline: timedelta) -> timedelta:
    """What a record's gone-by time adds to its topic's retention and segment: the
    producer's delivery deadline and the broker's retention check."""
    return deadline + timedelta(milliseconds=CHECK_MS)


# Kafka's default `log.retention.check.interval.ms`: how often a broker deletes expired segments.
CHECK_MS = 300_000


def _days(purpose: Purpose | None) -> int:
    return purpose.retention_days if purpose is not None else 1
