"""The registered consumers of the stream mode's consented topics (API.md, Stream mode): whether
a subject's records may go to the topic of a purpose, and the record of who received them.

A consented topic is shared by every system consuming it, and a record on it cannot be kept
from one of them: a subject's records go to the topic of P only when P has at least one
consumer and every consumer passes the delivery gates for that subject (transfer, DPA,
sale/share, TCF vendor: `governance/transfers.refusal`, the outbox's own rule), decided once
per subject and purpose a batch. Each consumer of a topic the subject's records went to is
recorded as a recipient of the subject for that purpose (`recipients`, first and last), in
the batch's transaction, so rights notices reach it as they reach any recipient."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from consentry import clock
from consentry.consent.cache import ConsentCache
from consentry.consent.purposes import PurposeRegistry
from consentry.delivery.outbox import record_refusals
from consentry.delivery.worker import LAST_EVERY
from consentry.governance import routing, transfers
from consentry.governance.datamap import DataMap
from consentry.governance.models import Region, System
from consentry.ingest.ports import AcceptedEvent
from consentry.operations import counters
from consentry.storage import delivery as sql
from consentry.storage import hooks
from consentry.storage import stream as stream_sql
from consentry.storage.configuration import config_version

_WRITTEN_MAX = 500_000
# Why a record was not produced when no gate refused it: nobody consumes the topic.
NO_CONSUMER = "no_consumer"


@dataclass(slots=True)
class Admitted:
    """A batch's answer: the (subject, purpose) pairs whose records go to the purpose's topic,
    the batch's accepted events (built only when a purpose of theirs has a consumer: none
    otherwise), and per (purpose, reason) the events kept off a topic."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    events: Sequence[AcceptedEvent] = ()
    withheld: dict[tuple[str, str], int] = field(default_factory=dict)
    # Per purpose, its consumers (the fields of a record are those of a category every one
    # of them declares: `declares`).
    consumers: Mapping[str, Sequence[System]] = field(default_factory=dict)
    # What was written for it: the gates' refusals per (system, reason), and the (subject,
    # system, purpose) recipients (written again by `again` when the transaction is retried).
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    recipients: set[tuple[str, str, str]] = field(default_factory=set)
    # The configuration version it was decided under (None: the batch stored nothing).
    version: int | None = None
    _declared: dict[tuple[str, str], bool] = field(default_factory=dict)

    def declares(self, purpose: str, category: str) -> bool:
        """Whether every consumer of the topic of `purpose` declares `category` (fideslang
        prefixes: System.declares), as the outbox carries only a system's declared fields: a
        record on a shared topic reaches all of them."""
        key = (purpose, category)
        known = self._declared.get(key)
        if known is None:
            found = self.consumers.get(purpose, ())
            known = self._declared[key] = bool(found) and all(s.declares(category) for s in found)
        return known


class Consumers:
    """Decides, in the caller's write transaction, which subjects' records the consented
    topics may carry, and records their consumers as recipients."""

    def __init__(
        self,
        datamap: DataMap,
        purposes: PurposeRegistry,
        cache: ConsentCache,
        exporter: Region,
    ) -> None:
        self.datamap = datamap
        self.purposes = purposes
        self.cache = cache
        self.exporter = exporter
        # (subject, system, purpose) recipients this process wrote (committed), and when.
        self._written: dict[tuple[str, str, str], datetime] = {}

    def admit(
        self,
        conn: Connection,
        stored_for: Mapping[str, int],
        accepted: Sequence[AcceptedEvent],
        *,
        now: datetime,
    ) -> Admitted:
        """Of a batch's `accepted` events (`stored_for`: per purpose, how many were stored for
        it), the (subject, purpose) pairs whose records may go to the purpose's consented
        topic. Records each consumer of an admitted pair as a recipient of the subject for that
        purpose; counts what was kept back (`consentry_stream_withheld`), and what a gate kept
        from a consumer per system and reason as the outbox does (`delivery.refused`, audited
        with no subject named)."""
        answer = Admitted()
        if not stored_for:
            return answer
        # A system joining a topic's consumers waits for this batch's marks, and a batch
        # started after it decides under the data map it committed (delivery/joiners.py).
        stream_sql.hold_consumers(conn, alone=False)
        version = answer.version = config_version(conn)
        systems = list(self.datamap.all(conn, version).values())
        consumers = {p: routing.consumers_of(systems, p) for p in stored_for}
        answer.consumers = consumers
        withheld: dict[tuple[str, str], int] = defaultdict(int)
        for purpose, n in stored_for.items():
            if not consumers[purpose]:
                withheld[(purpose, NO_CONSUMER)] += n
        if len(withheld) < len(stored_for):
            answer.events = list(accepted)
            self._gates(conn, answer, consumers, withheld, version, now)
        answer.withheld = dict(withheld)
        if withheld:
            # Counted once committed: a batch rolled back and read again counts once.
            hooks.after_commit(conn, _Withheld, _Withheld()).add(answer.withheld)
        return answer

    def again(self, conn: Connection, admitted: Admitted, *, now: datetime) -> None:
        """Write what `admit` wrote for `admitted` (at `now`) again, in the caller's write
        transaction: the batch's Kafka transaction committed its records in a database
        transaction that then failed, and the batch's write is being retried. The records are
        on the topic: their consumers stay recipients and the refusals stay counted."""
        if admitted.refused:
            record_refusals(conn, admitted.refused)
        if admitted.recipients:
            self._recipients(conn, admitted.recipients, now)
        if admitted.withheld:
            hooks.after_commit(conn, _Withheld, _Withheld()).add(admitted.withheld)

    def _gates(
        self,
        conn: Connection,
        answer: Admitted,
        consumers: Mapping[str, list[System]],
        withheld: dict[tuple[str, str], int],
        version: int,
        now: datetime,
    ) -> None:
        """The delivery gates, once per (system, subject) a batch; a pair is admitted when
        every consumer of its purpose passes them; its consumers become its recipients."""
        wanted = Counter((e.subject_id, p) for e in answer.events for p in e.purposes)
        every = list(self.purposes.all(conn, version).values())
        states = self.cache.for_commit(conn, {s for s, p in wanted if consumers[p]})
        refused: dict[tuple[str, str], int] = defaultdict(int)
        decided: dict[tuple[str, str], str | None] = {}
        for (subject_id, purpose), n in sorted(wanted.items()):
            stopped: str | None = None
            for system in consumers[purpose]:
                key = (system.system_id, subject_id)
                if key not in decided:
                    reason = transfers.refusal(
                        system, states.get(subject_id), every, self.exporter, now
                    )
                    decided[key] = None if reason is None else reason.value
                found = decided[key]
                if found is not None:
                    refused[(system.system_id, found)] += n
                    stopped = stopped or found
            if not consumers[purpose]:
                continue
            if stopped is None:
                answer.pairs.add((subject_id, purpose))
            else:
                withheld[(purpose, stopped)] += n
        if refused:
            answer.refused = dict(refused)
            record_refusals(conn, refused)
        if answer.pairs:
            triples = {(s, system.system_id, p) for s, p in answer.pairs for system in consumers[p]}
            answer.recipients = triples
            self._recipients(conn, triples, now)

    def _recipients(
        self, conn: Connection, triples: set[tuple[str, str, str]], now: datetime
    ) -> None:
        """First and last, in the transaction that produces the records, so the notices of an
        erasure or a withdrawal committed after it reach every consumer that could read them;
        the last to a minute (LAST_EVERY, as the delivery worker writes it): a triple this
        process wrote less than a minute ago is not written again."""
        since = now - LAST_EVERY
        due = sorted(t for t in triples if (self._written.get(t) or since) <= since)
        if not due:
            return
        stamp = clock.rfc3339(now)
        sql.add_recipients(conn, set(due), stamp)
        sql.touch_recipients(conn, due, stamp)
        written = hooks.after_commit(conn, _Written, _Written(self._written))
        written.done.update(dict.fromkeys(due, now))


class _Withheld:
    """A transaction's events kept off the consented topics, counted once it has committed."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, withheld: Mapping[tuple[str, str], int]) -> None:
        for key, n in withheld.items():
            self.counts[key] += n

    def __call__(self) -> None:
        counters.count_withheld(self.counts)


class _Written:
    """Recipients written, and when: remembered once committed."""

    def __init__(self, into: dict[tuple[str, str, str], datetime]) -> None:
        self.into = into
        self.done: dict[tuple[str, str, str], datetime] = {}

    def __call__(self) -> None:
        if len(self.into) + len(self.done) > _WRITTEN_MAX:
            self.into.clear()
        self.into.update(self.done)
