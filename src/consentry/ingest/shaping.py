"""The pipeline's write step: accepted events planned (minimised), treated and sealed into
rows, stored with the batch, and handed on for delivery in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast, overload

from sqlalchemy import Connection

from consentry import clock, native
from consentry.consent.models import Purpose, SubjectConsent
from consentry.ingest import minimise
from consentry.ingest.minimise import Plan, Planner
from consentry.ingest.models import Treatment
from consentry.ingest.ports import AcceptedEvent, Deliveries
from consentry.ingest.schemas import CompiledSchema
from consentry.ingest.treatments import Item, PureTreater, Treater
from consentry.ingest.work import Early, Ready, Shaped, Work
from consentry.keys.envelope import Sealer
from consentry.keys.subject_keys import SubjectKeys
from consentry.storage import ingest as sql

# An event decided before the transaction: its schema, state, allowed purposes and sealer.
Decided = tuple[Work, CompiledSchema, SubjectConsent, list[str], Sealer]


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

    def plan(
        self,
        w: Work,
        schema: CompiledSchema,
        allowed: list[str],
        purposes: dict[str, Purpose],
        state: SubjectConsent,
    ) -> Plan:
        return self.planner.plan(
            schema.fields, schema.has_special, allowed, tuple(w.properties), purposes, state
        )

    def treat_ready(self, decoded: list[tuple[Work, CompiledSchema]], ready: Ready) -> None:
        """The events' values of pure treatments (pseudonymise, redact) treated into `ready`,
        each treatment once over the batch's distinct values."""
        queues: dict[Treatment, dict[tuple[str, Any], None]] = defaultdict(dict)
        for w, schema in decoded:
            for name, value in w.properties.items():
                treatment = schema.fields[name].treatment
                if treatment in self.pure and (treatment, name, value) not in ready:
                    queues[treatment][(name, value)] = None
        for treatment, queue in queues.items():
            fields = [name for name, _ in queue]
            values = [value for _, value in queue]
            for name, value, treated in zip(
                fields, values, self.pure[treatment].many(fields, values), strict=True
            ):
                ready[(treatment, name, value)] = treated

    def shape_early(
        self, decided: list[Decided], purposes: dict[str, Purpose], ready: Ready
    ) -> None:
        """Events decided before the transaction, planned and sealed there too (w.early) when
        each value they treat is in `ready`."""
        found = []
        for w, schema, state, allowed, sealer in decided:
            plan = self.plan(w, schema, allowed, purposes, state)
            values = {}
            for name, treatment, _sealed in plan.treat:
                key = (treatment, name, w.properties[name])
                if key not in ready:
                    break
                values[name] = ready[key]
            else:
                found.append((w, schema, state, allowed, plan, values, sealer))
        shaped = _shape_all(
            [(w, plan, values, sealer) for w, _, _, _, plan, values, sealer in found]
        )
        for (w, schema, state, allowed, _, _, _), one in zip(found, shaped, strict=True):
            w.early = Early(state, purposes, schema, allowed, one)

    def store(
        self,
        conn: Connection,
        work: list[Work],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        version: int,
        ready: Ready,
    ) -> Sequence[AcceptedEvent]:
        """The batch's accepted events stored, and handed on for delivery; returns them as
        delivery is handed them."""
        accepted = [w for w in work if w.code is None]
        if not accepted:
            return ()
        shaped = [_early(w, states, purposes) for w in accepted]
        late = [n for n, s in enumerate(shaped) if s is None]
        if late:
            redone = self._shape_late(conn, [accepted[n] for n in late], states, purposes, ready)
            for n, one in zip(late, redone, strict=True):
                shaped[n] = one
        done = [s for s in shaped if s is not None]
        # Taken in the transaction, after the states were read: the withdrawal purge counts an
        # event received at or before a withdrawal as stored under the consent it withdrew.
        received_at = clock.rfc3339(clock.now())
        sql.insert_events(conn, native.received([s.row for s in done], received_at))
        handed = Handed(accepted, done)
        self.deliveries.enqueue(
            conn,
            handed,
            version=version,
            states=states,
            purposes=purposes,
        )
        return handed

    def _shape_late(
        self,
        conn: Connection,
        accepted: list[Work],
        states: dict[str, SubjectConsent],
        purposes: dict[str, Purpose],
        ready: Ready,
    ) -> list[Shaped]:
        """Accepted events not shaped before the transaction (or whose early shape no longer
        stands): planned, treated and sealed here."""
        sealers = {s: self.keys.sealer(conn, s) for s in {str(w.subject_id) for w in accepted}}
        plans: list[Plan] = []
        treated: list[dict[str, Any]] = [{} for _ in accepted]
        # Each treatment other than keep runs once per batch over every value it must treat
        # (pure ones mostly ran before the transaction: `ready`).
        queues: dict[Treatment, list[tuple[int, str, Item]]] = defaultdict(list)
        for n, w in enumerate(accepted):
            schema = w.schema
            if schema is None:
                raise ValueError("only classified events are stored")
            subject_id = str(w.subject_id)
            plan = self.plan(w, schema, w.purposes, purposes, states[subject_id])
            plans.append(plan)
            done = treated[n]
            for name, treatment, _sealed in plan.treat:
                value = w.properties[name]
                if treatment in self.pure and (treatment, name, value) in ready:
                    done[name] = ready[(treatment, name, value)]
                    continue
                item = Item(subject_id, name, value, sealers[subject_id])
                queues[treatment].append((n, name, item))
        for treatment, queue in queues.items():
            results = self.treaters[treatment].treat(conn, [item for _, _, item in queue])
            for (n, name, _), value in zip(queue, results, strict=True):
                treated[n][name] = value
        return _shape_all(
            [
                (w, plan, values, sealers[str(w.subject_id)])
                for w, plan, values in zip(accepted, plans, treated, strict=True)
            ]
        )


def _early(
    w: Work, states: dict[str, SubjectConsent], purposes: dict[str, Purpose]
) -> Shaped | None:
    """The event's early shape, if it still stands (see Early)."""
    early = w.early
    if (
        early is None
        or early.state is not states.get(str(w.subject_id))
        or early.purposes is not purposes
        or early.schema is not w.schema
        or early.allowed != w.purposes
    ):
        return None
    return early.shaped


def _shape_all(items: list[tuple[Work, Plan, dict[str, Any], Sealer]]) -> list[Shaped]:
    """Each event's row, from its plan, treated values and subject's sealer: kept values in
    clear, personal ones sealed under the subject's key, the batch's in one call to the core."""
    rows = native.shape_events(
        [_item(w, plan, treated, sealer) for w, plan, treated, sealer in items]
    )
    return [
        Shaped(row, plan, treated) for (_, plan, treated, _), row in zip(items, rows, strict=True)
    ]


def _item(
    w: Work, plan: Plan, treated: dict[str, Any], sealer: Sealer
) -> tuple[
    native.RowPlan, dict[str, Any], dict[str, Any], native.Sealer, str, str, int, datetime, str
]:
    """What the core needs of one event to write its row (see native.shape_events)."""
    event, schema = w.event, w.schema
    if (
        event is None
        or event.occurred_at is None
        or schema is None
        or w.ref is None
        or w.event_id is None
    ):
        raise ValueError("only classified events are stored")
    return (
        plan.native,
        w.properties,
        treated,
        sealer.native,
        w.event_id,
        schema.schema.event_type,
        schema.schema.version,
        event.occurred_at,
        str(w.subject_id or w.ref.subject_id),
    )


class Handed(Sequence[AcceptedEvent]):
    """The batch's stored events as the Deliveries port is handed them, each built only when
    it is read: most data maps have no systems, and then the port reads none of them."""

    __slots__ = ("_shaped", "_work")

    def __init__(self, work: list[Work], shaped: list[Shaped]) -> None:
        if len(work) != len(shaped):
            raise ValueError("every stored event is handed with its work item")
        self._work = work
        self._shaped = shaped

    def __len__(self) -> int:
        return len(self._shaped)

    @overload
    def __getitem__(self, index: int) -> AcceptedEvent: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AcceptedEvent]: ...
    def __getitem__(self, index: int | slice) -> AcceptedEvent | Sequence[AcceptedEvent]:
        if isinstance(index, slice):
            return Handed(self._work[index], self._shaped[index])
        return _accepted(self._work[index], self._shaped[index])

    def __iter__(self) -> Iterator[AcceptedEvent]:
        return (_accepted(w, s) for w, s in zip(self._work, self._shaped, strict=True))


def _accepted(w: Work, shaped: Shaped) -> AcceptedEvent:
    """What delivery is handed of a stored event: stored for the purposes the batch allowed
    (w.purposes: an early shape stands only for those), its kept values treated, in clear."""
    event, schema = w.event, w.schema
    if event is None or event.occurred_at is None or schema is None:
        raise ValueError("only classified events are stored")
    row = shaped.row
    return AcceptedEvent(
        cast(str, row[0]),
        schema.schema.event_type,
        event.occurred_at,
        cast(str, row[4]),
        w.purposes,
        shaped.plan.fields,
        minimise.values(shaped.plan, w.properties, shaped.treated),
        schema.categories,
        schema.sensitive,
        schema.sealed,
    )
