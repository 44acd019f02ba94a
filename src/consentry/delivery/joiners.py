"""Systems joining the consumers of a consented topic that still holds records (API.md,
Stream mode): a record on a topic was produced under the gates of the consumers it had then,
and a system that becomes one of its readers later could read it. Such a change is accepted
only when no erasure or withdrawal still waits for the topic's records, and the system passes
the delivery gates for every subject with a record still on the topic and declares every data
category the purpose's records can carry; it then becomes a recipient of those subjects
(rights notices, access reports). Otherwise it is refused (`topic_holds_records`) until the
last such record is gone (docs/decisions.md). A consumer's own change is never refused: it
could read those records already, and its new definition gates the records after it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from consentry import clock
from consentry.consent.cache import ConsentCache
from consentry.consent.purposes import PurposeRegistry
from consentry.errors import TopicHoldsRecords
from consentry.governance import consented, routing, transfers
from consentry.governance.models import Region, System
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import SchemaRegistry
from consentry.storage import delivery as delivery_sql
from consentry.storage import stream as stream_sql


class Joiners:
    """The data map's TopicReaders port (governance/datamap.py)."""

    def __init__(
        self,
        purposes: PurposeRegistry,
        schemas: SchemaRegistry,
        cache: ConsentCache,
        exporter: Region,
    ) -> None:
        self.purposes = purposes
        self.schemas = schemas
        self.cache = cache
        self.exporter = exporter

    def check(self, conn: Connection, system: System, previous: System | None) -> None:
        """Refuse (TopicHoldsRecords) a change that makes `system` a consumer of a topic while
        the topic holds records, unless it may read every one of them and no purge waits for
        them; accepted, it becomes a recipient of their subjects."""
        purpose = routing.consumes(system)
        if purpose is None:
            return
        if previous is not None and routing.consumes(previous) == purpose:
            # A consumer already: it could read the topic's records before this change, and
            # its new definition gates the records produced after it (a stricter one, a DPA
            # that ended, withholds them at once).
            return
        topic = consented.topic(purpose)
        # After the stream's batches in flight (their marks are read below); the next ones
        # wait for this change and decide under it.
        stream_sql.hold_consumers(conn, alone=True)
        now = clock.now()
        purging = stream_sql.purges_waiting_on(conn, topic)
        if purging is not None:
            # Erased or withdrawn subjects' records are still there, and their purge notices
            # went to the recipients of that moment: a new reader would get them unannounced.
            until = clock.rfc3339(purging)
            raise TopicHoldsRecords(
                f"{topic} holds records of subjects whose erasure or withdrawal waits for them "
                f"until {until}; {system.system_id!r} may join its consumers after that",
                topic=topic,
                until=until,
            )
        live = stream_sql.live_on(conn, topic, now)
        if not live:
            return
        reason = self._refusal(conn, system, purpose, sorted(live), now)
        if reason is not None:
            until = clock.rfc3339(max(live.values()))
            raise TopicHoldsRecords(
                f"{topic} holds records produced for its consumers until {until}; "
                f"{system.system_id!r} may not read them ({reason}): store this change after "
                f"{until}, or one that passes the delivery gates and declares the categories",
                topic=topic,
                until=until,
            )
        stamp = clock.rfc3339(now)
        triples = {(s, system.system_id, purpose) for s in live}
        delivery_sql.add_recipients(conn, triples, stamp)
        delivery_sql.touch_recipients(conn, sorted(triples), stamp)

    def _refusal(
        self,
        conn: Connection,
        system: System,
        purpose: str,
        subjects: list[str],
        now: datetime,
    ) -> str | None:
        """Why `system` may not read the topic's records (no personal data: categories and
        gates), or None."""
        missing = sorted(c for c in self.categories(conn, purpose) if not system.declares(c))
        if missing:
            return "it does not declare " + ", ".join(missing)
        every = list(self.purposes.all(conn).values())
        states = self.cache.for_commit(conn, set(subjects))
        refused: set[str] = set()
        for subject_id in subjects:
            found = transfers.refusal(system, states.get(subject_id), every, self.exporter, now)
            if found is not None:
                refused.add(found.value)
        if refused:
            # The gates' names only: a count could single a person out on a quiet topic.
            said = ", ".join(sorted(refused))
            return f"the delivery gates refuse it for subjects with records there: {said}"
        return None

    def categories(self, conn: Connection, purpose: str) -> set[str]:
        """Every data category a record of the purpose's topic can carry: a field of a schema
        serving the purpose, shown to it, neither sealed nor dropped (outbox.for_purpose)."""
        found = set()
        for compiled in self.schemas.all(conn).values():
            if purpose not in compiled.schema.purposes:
                continue
            for spec in compiled.schema.fields:
                if spec.sealed or spec.treatment is Treatment.DROP:
                    continue
                if spec.purposes is not None and purpose not in spec.purposes:
                    continue
                found.add(spec.category)
        return found
