"""The pipeline's write step: accepted events planned (minimised) once per decision, treated,
written and sealed into rows by the core in one call a batch, stored with the batch, and handed
on for delivery in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast, overload

from sqlalchemy import Connection

from consentry import clock, native
from consentry.consent.models import Purpose, SubjectConsent
from consentry.ingest import minimise
from consentry.ingest.minimise import Plan, Planner
from consentry.ingest.models import Treatment
from consentry.ingest.ports import AcceptedEvent, Deliveries
from consentry.ingest.schemas import CompiledSchema
from consentry.ingest.treatments import Item, Pseudonymise, PureTreater, Treater
from consentry.ingest.work import Decision, Work
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import ingest as sql

Row = tuple[object, ...]


class Shaper:
    """Turns decided events into stored rows and deliveries."""

    def __init__(
        self, keys: SubjectKeys, treaters: Mapping[Treatment, Treater], deliveries: Deliveries
    ) -> None:
        self.keys = keys
        self.treaters = treaters
        self.deliveries = deliveries
        self.planner = Planner()
        self.pure = {k: cast(PureTreater, t) for k, t in treaters.items() if t.pure}
        self.pseudonyms = cast(Pseudonymise, treaters[Treatment.PSEUDONYMISE]).core

    def plan(self, decision: Decision, schema: CompiledSchema) -> Plan:
        """The decision's plan over every field of `schema` (the core narrows it to the
        fields each event has), remembered with the decision."""
        decided = decision.value
        if decided.plan is None:
            decided.plan = self.planner.plan(
                schema.fields,
                schema.has_special,
                decided.allowed,
                schema.names,
                decision.purposes,
                decision.state,
            )
        return decided.plan

    def shape(
        self,
        work: Work,
        positions: list[int],
        sealers: Mapping[int, Sealer],
        tokens: dict[int, dict[str, str]] | None = None,
    ) -> list[Row]:
        """The rows of the events at `positions`, decided (work.decision_of), each sealed
        under its subject's sealer (`sealers` by subject index); one call to the core."""
        if not positions:
            return []
        decision_of = work.decision_of
        groups: list[Any] = [None] * len(work.decisions)
        for d in {decision_of[n] for n in positions}:
            subject, schema = work.decided_for[d]
            plan = self.plan(work.decisions[d], schema)
            groups[d] = (
                plan.native,
                sealers[subject].native,
                work.subject_ids[subject],
                schema.schema.event_type,
                schema.schema.version,
            )
        return native.shape_batch(
            groups,
            positions,
            decision_of,
            work.events,
            work.values,
            tokens or {},
            self.pseudonyms,
        )

    def store(
        self,
        conn: Connection,
        work: Work,
        accepted: list[int],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        version: int,
    ) -> Sequence[AcceptedEvent]:
        """The batch's accepted events (`accepted`, their positions) stored, and handed on for
        delivery; returns them as delivery is handed them."""
        if not accepted:
            return ()
        rows: list[Row | None]
        late: list[int] = []
        if work.early_rows:
            early_rows, early_decisions = work.early_rows, work.early_decisions
            decisions, decision_of = work.decisions, work.decision_of
            rows = [
                early_rows[n] if early_decisions[n] is decisions[decision_of[n]] else None
                for n in accepted
            ]
            late = [k for k, row in enumerate(rows) if row is None]
        else:
            rows = [None] * len(accepted)
            late = list(range(len(accepted)))
        if late:
            redone = self._shape_late(conn, work, [accepted[k] for k in late])
            for k, row in zip(late, redone, strict=True):
                rows[k] = row
        done = cast(list[Row], rows)
        # Taken in the transaction, after the states were read: the withdrawal purge counts an
        # event received at or before a withdrawal as stored under the consent it withdrew.
        received_at = clock.rfc3339(clock.now())
        sql.insert_events(conn, native.received(done, received_at))
        handed = Handed(self, work, accepted, done)
        self.deliveries.enqueue(
            conn,
            handed,
            version=version,
            states=states,
            purposes=purposes,
        )
        return handed

    def _shape_late(self, conn: Connection, work: Work, positions: list[int]) -> list[Row]:
        """Accepted events not shaped before the transaction (or whose early rows no longer
        stand): their subjects' keys read, their tokens issued, shaped here."""
        subjects = {work.decided_for[work.decision_of[n]][0] for n in positions}
        sealers = {
            s: self.keys.sealer(conn, cast(str, work.subject_ids[s])) for s in sorted(subjects)
        }
        tokens = self._tokens(conn, work, positions, sealers)
        work.tokens.update(tokens)
        return self.shape(work, positions, sealers, tokens)

    def _tokens(
        self, conn: Connection, work: Work, positions: list[int], sealers: Mapping[int, Sealer]
    ) -> dict[int, dict[str, str]]:
        """The tokens of the events' tokenised fields, by position: the batch's in one call."""
        queue: list[tuple[int, str, Item]] = []
        for n in positions:
            d = work.decision_of[n]
            subject, schema = work.decided_for[d]
            plan = self.plan(work.decisions[d], schema)
            if not plan.tokenised:
                continue
            values = cast(dict[str, Any], work.values[n])
            subject_id = cast(str, work.subject_ids[subject])
            for name, treatment, _sealed in plan.treat:
                if treatment is Treatment.TOKENISE and name in values:
                    item = Item(subject_id, name, values[name], sealers[subject])
                    queue.append((n, name, item))
        tokens: dict[int, dict[str, str]] = {}
        if queue:
            issued = self.treaters[Treatment.TOKENISE].treat(conn, [i for _, _, i in queue])
            for (n, name, _), token in zip(queue, issued, strict=True):
                tokens.setdefault(n, {})[name] = token
        return tokens

    def treated(self, plan: Plan, values: dict[str, Any], tokens: Mapping[str, Any]) -> Any:
        """One event's treated values, as the core stored them (for delivery)."""
        treated: dict[str, Any] = {}
        for name, treatment, _sealed in plan.treat:
            if treatment is Treatment.TOKENISE:
                treated[name] = tokens[name]
            else:
                (treated[name],) = self.pure[treatment].many([name], [values[name]])
        return treated


class Handed(Sequence[AcceptedEvent]):
    """The batch's stored events as the Deliveries port is handed them, each built only when
    it is read: most data maps have no systems, and then the port reads none of them."""

    __slots__ = ("_positions", "_rows", "_shaper", "_work")

    def __init__(self, shaper: Shaper, work: Work, positions: list[int], rows: list[Row]) -> None:
        if len(positions) != len(rows):
            raise ValueError("every stored event is handed with its row")
        self._shaper = shaper
        self._work = work
        self._positions = positions
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> AcceptedEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AcceptedEvent]: ...
    def __getitem__(self, index: int | slice) -> AcceptedEvent | Sequence[AcceptedEvent]:
        if isinstance(index, slice):
            return Handed(self._shaper, self._work, self._positions[index], self._rows[index])
        return self._accepted(self._positions[index], self._rows[index])

    def __iter__(self) -> Iterator[AcceptedEvent]:
        return (self._accepted(n, r) for n, r in zip(self._positions, self._rows, strict=True))

    def _accepted(self, n: int, row: Row) -> AcceptedEvent:
        """What delivery is handed of a stored event: stored for the purposes the batch
        allowed, its kept values treated, in clear."""
        work = self._work
        event, values = work.events[n], work.values[n]
        d = work.decision_of[n]
        decided = work.decisions[d].value
        schema = work.decided_for[d][1]
        plan = decided.plan
        if event is None or event.occurred_at is None or values is None or plan is None:
            raise ValueError("only classified events are stored")
        present = minimise.narrowed(plan, values)
        treated = self._shaper.treated(present, values, work.tokens.get(n, {}))
        return AcceptedEvent(
            cast(str, row[0]),
            schema.schema.event_type,
            event.occurred_at,
            cast(str, row[4]),
            decided.allowed,
            present.fields,
            minimise.values(present, values, treated),
            schema.categories,
            schema.sensitive,
            schema.sealed,
        )
