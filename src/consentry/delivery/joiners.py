"""Systems joining the consumers of a consented topic that still holds records (API.md,
Stream mode): a record on a topic was produced under the gates of the consumers it had then,
and a system that becomes one of its readers later (or a consumer whose gate-relevant fields
change) could read it. Such a change is accepted only when the system passes the delivery
gates for every subject with a record still on the topic and declares every data category the
purpose's records can carry; it then becomes a recipient of those subjects (rights notices,
access reports). Otherwise it is refused (`topic_holds_records`) until the last record is
gone (docs/decisions.md)."""

from __future__ import annotations

from collections import Counter
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


def gated(system: System) -> tuple[object, ...]:
    """What the delivery gates and a record's fields depend on in a system's definition:
    region, transfer safeguard, DPA, CCPA role and vendor (sale/share), TCF vendor, declared
    categories."""
    return (
        system.region,
        system.transfer_mechanism,
        system.dpa_signed,
        system.dpf_certified_until,
        system.tia_ref,
        system.ccpa_role,
        system.vendor,
        system.tcf_vendor_id,
        system.data_categories,
    )


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
        """Refuse (TopicHoldsRecords) a change that makes `system` a consumer of a topic, or
        changes a consumer's gate-relevant fields, while the topic holds records, unless it
        may read every one of them; accepted, it becomes a recipient of their subjects."""
        purpose = routing.consumes(system)
        if purpose is None:
            return
        unchanged = previous is not None and gated(previous) == gated(system)
        if unchanged and previous is not None and routing.consumes(previous) == purpose:
            return
        topic = consented.topic(purpose)
        # After the stream's batches in flight (their marks are read below); the next ones
        # wait for this change and decide under it.
        stream_sql.hold_consumers(conn, alone=True)
        now = clock.now()
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
        """Why `system` may not read the topic's records (no personal data: categories,
        gates and counts of subjects), or None."""
        missing = sorted(c for c in self.categories(conn, purpose) if not system.declares(c))
        if missing:
            return "it does not declare " + ", ".join(missing)
        every = list(self.purposes.all(conn).values())
        states = self.cache.for_commit(conn, set(subjects))
        refused: Counter[str] = Counter()
        for subject_id in subjects:
            found = transfers.refusal(system, states.get(subject_id), every, self.exporter, now)
            if found is not None:
                refused[found.value] += 1
        if refused:
            said = ", ".join(f"{reason} for {n}" for reason, n in sorted(refused.items()))
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
