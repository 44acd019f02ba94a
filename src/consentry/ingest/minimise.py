"""Data minimisation: which fields of an event are kept, for which purposes, and where each
kept value goes (clear, or sealed under the subject's key). Worked out once per decision over
every field of its schema and remembered, so the hot path only looks a plan up; the core
narrows it to the fields each event has (core/src/batch.rs, `narrowed` here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from consentry import native
from consentry.consent import policy
from consentry.consent.models import Purpose, SubjectConsent
from consentry.ingest.models import FieldSpec, Treatment

_JSON = msgspec.json.Encoder(order="sorted")
_PLANS_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Plan:
    """How one shape of event (schema, purposes allowed, fields present) is stored."""

    # Kept as they are: (field, sealed?).
    keep: tuple[tuple[str, bool], ...]
    # Treated first: (field, treatment, sealed?).
    treat: tuple[tuple[str, Treatment, bool], ...]
    purposes_json: str
    # The same purposes as bits of events.purpose_bits.
    purpose_bits: int
    # Every kept field with the purposes it may be shown to (None: all of the event's).
    fields: dict[str, list[str] | None]
    # The same plan in the core, which writes and seals the rows (ingest.shaping).
    native: native.FieldPlan
    # The kept fields whose values are stored as tokens from the vault.
    tokenised: frozenset[str]


class Planner:
    """Plans by shape; a schema with special-category fields is planned per subject state,
    since an explicit grant (Art. 9(2)(a)) decides whether those fields are kept; whether a
    limit on sensitive personal information holds is part of the shape."""

    def __init__(self) -> None:
        # Keyed by the ids of the field mapping and of the purposes (a purpose's conditions
        # decide which fields serve it); the entry holds both, so an id that a reloaded
        # schema's or configuration's new object happens to reuse never finds a stale plan.
        self._plans: dict[
            tuple[object, ...], tuple[Mapping[str, FieldSpec], dict[str, Purpose], Plan]
        ] = {}

    def plan(
        self,
        fields: Mapping[str, FieldSpec],
        has_special: bool,
        allowed: list[str],
        present: tuple[str, ...],
        purposes: dict[str, Purpose],
        state: SubjectConsent,
    ) -> Plan:
        if has_special:
            return _make_plan(fields, allowed, present, purposes, state)
        key = (
            id(fields),
            id(purposes),
            tuple(allowed),
            present,
            policy.sensitive_limit_holds(state),
        )
        entry = self._plans.get(key)
        if entry is not None and entry[0] is fields and entry[1] is purposes:
            return entry[2]
        if len(self._plans) > _PLANS_SIZE:
            self._plans.clear()
        plan = _make_plan(fields, allowed, present, purposes, state)
        self._plans[key] = (fields, purposes, plan)
        return plan


def _make_plan(
    fields: Mapping[str, FieldSpec],
    allowed_purposes: list[str],
    present: tuple[str, ...],
    purposes: dict[str, Purpose],
    state: SubjectConsent,
) -> Plan:
    """Each present field kept for the purposes policy.field_purposes lets it serve (none: not
    kept); a dropped field never."""
    allowed = set(allowed_purposes)
    keep: list[tuple[str, bool]] = []
    treat: list[tuple[str, Treatment, bool]] = []
    restricted: dict[str, list[str]] = {}
    for name in present:
        spec = fields[name]
        if spec.treatment is Treatment.DROP:
            continue
        serving, narrowed = policy.field_purposes(
            allowed,
            spec.purposes,
            special=spec.special,
            sensitive=spec.sensitive,
            purposes=purposes,
            state=state,
        )
        if not serving:
            continue
        if narrowed:
            restricted[name] = sorted(serving)
        if spec.treatment is Treatment.KEEP:
            keep.append((name, spec.sealed))
        else:
            treat.append((name, spec.treatment, spec.sealed))
    purposes_json = _JSON.encode(allowed_purposes).decode()
    bits = purpose_mask(purposes[key] for key in allowed_purposes)
    return _planned(tuple(keep), tuple(treat), purposes_json, bits, restricted)


def _planned(
    keep: tuple[tuple[str, bool], ...],
    treat: tuple[tuple[str, Treatment, bool], ...],
    purposes_json: str,
    bits: int,
    restricted: dict[str, list[str]],
    core: native.FieldPlan | None = None,
) -> Plan:
    return Plan(
        keep,
        treat,
        purposes_json,
        bits,
        {name: restricted.get(name) for name, _ in keep}
        | {n: restricted.get(n) for n, *_ in treat},
        core
        or native.FieldPlan(
            [(name, Treatment.KEEP.value, sealed, restricted.get(name)) for name, sealed in keep]
            + [(name, t.value, sealed, restricted.get(name)) for name, t, sealed in treat],
            purposes_json,
            bits,
        ),
        frozenset(name for name, t, _ in treat if t is Treatment.TOKENISE),
    )


def narrowed(plan: Plan, present: Mapping[str, object]) -> Plan:
    """The plan of an event that has the fields `present` (the core narrows plans the same
    way when it writes rows, core/src/batch.rs): for what delivery is handed of it."""
    keep = tuple(k for k in plan.keep if k[0] in present)
    treat = tuple(t for t in plan.treat if t[0] in present)
    if len(keep) == len(plan.keep) and len(treat) == len(plan.treat):
        return plan
    restricted = {
        name: purposes
        for name, purposes in plan.fields.items()
        if purposes is not None and name in present
    }
    # The core narrows the whole plan to each event's fields itself: the same one serves.
    return _planned(keep, treat, plan.purposes_json, plan.purpose_bits, restricted, plan.native)


def purpose_mask(purposes: Iterable[Purpose]) -> int:
    """The bits of these purposes in events.purpose_bits."""
    mask = 0
    for purpose in purposes:
        if purpose.bit < 0:
            raise ValueError(f"purpose {purpose.key!r} has no bit yet")
        mask |= 1 << purpose.bit
    return mask


def subject_key(subject_id: str) -> int:
    """events.subject_key: 60 bits of the subject id's random part (the core's rule,
    core/src/shape.rs, which also writes it at ingest). Two subjects sharing a key only ever
    exclude each other's events from reads, never include them (see reads)."""
    return native.subject_key(subject_id)


def values(plan: Plan, properties: dict[str, Any], treated: dict[str, Any]) -> dict[str, Any]:
    """The event's kept values as delivery is handed them: the values sent of the fields kept
    as they are, the treated values of the others (the core stores the same, core/src/shape.rs).
    """
    kept = {name: properties[name] for name, _sealed in plan.keep}
    for name, _treatment, _sealed in plan.treat:
        kept[name] = treated[name]
    return kept


def encode(values: dict[str, Any]) -> str:
    """Stored JSON: sorted keys, no whitespace."""
    return _JSON.encode(values).decode()


def encode_bytes(values: dict[str, Any]) -> bytes:
    return _JSON.encode(values)
