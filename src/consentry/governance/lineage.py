"""Lineage: where a schema field can go (from its schema, the purposes and the data map, by the
delivery's own routing rule), and where one subject's data went (from the delivery records:
recipients and acknowledged rights notices; never event content)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from consentry import clock
from consentry.consent import policy
from consentry.consent.models import Purpose
from consentry.errors import FieldNotFound, UnknownEventType
from consentry.governance import routing
from consentry.governance.models import System
from consentry.ingest.models import FieldSpec, Treatment
from consentry.ingest.schemas import CompiledSchema
from consentry.storage import delivery as sql


def field_lineage(
    event_type: str,
    name: str,
    schemas: Mapping[str, CompiledSchema],
    purposes: Mapping[str, Purpose],
    systems: Mapping[str, System],
) -> dict[str, Any]:
    """The field's data category and treatment, the purposes it may be kept for, how long
    (the longest retention of those: it goes when the last of them ends), and every system
    a delivery would carry it to, with the purposes it would be shown to there. A dropped
    field is never stored: no purposes, no systems."""
    compiled = schemas.get(event_type)
    if compiled is None:
        raise UnknownEventType(f"no schema for {event_type!r}", event_type=event_type)
    spec = compiled.fields.get(name)
    if spec is None:
        raise FieldNotFound(f"no field {name!r} in {event_type!r}", field=name)
    serving = field_purposes(compiled.schema.purposes, spec, purposes)
    # What an accepted event records of the field (AcceptedEvent.fields): the purposes it is
    # narrowed to, or None when every purpose of the event may see it.
    only = serving if spec.purposes is not None or spec.special else None
    reached = []
    if serving:
        for system_id, system in sorted(systems.items()):
            shared = routing.shared(system, compiled.schema.purposes)
            shown = routing.field_serving(only, shared)
            via = shared if shown is None else shown
            if via and system.declares(spec.category):
                reached.append(
                    {
                        "system_id": system_id,
                        "region": system.region.value,
                        "transfer_mechanism": system.transfer_mechanism.value,
                        "purposes": via,
                    }
                )
    return {
        "event_type": event_type,
        "field": name,
        "category": spec.category,
        "treatment": spec.treatment.value,
        "purposes": serving,
        "retention_days": max((purposes[p].retention_days for p in serving), default=None),
        "systems": reached,
    }


def field_purposes(
    schema_purposes: tuple[str, ...], spec: FieldSpec, purposes: Mapping[str, Purpose]
) -> list[str]:
    """The schema's purposes (in its order) the field may be kept for: its own if it names
    some; for special-category data only purposes with an Art. 9(2) condition (whether a
    subject's grant was explicit, for condition `a`, is decided per subject at ingest)."""
    if spec.treatment is Treatment.DROP:
        return []
    serving = [p for p in schema_purposes if spec.purposes is None or p in spec.purposes]
    if spec.special:
        serving = [p for p in serving if policy.special_category_purpose(purposes[p])]
    return serving


def subject_lineage(conn: Connection, subject_id: str) -> dict[str, Any]:
    """Per system that received the subject's data or a rights notice about it: the purposes
    it received data for, when first and last (the first send, the latest acknowledged
    delivery), and the rights notices it acknowledged. Ids, purposes and times only."""
    systems: dict[str, dict[str, Any]] = {}

    def entry(system_id: str) -> dict[str, Any]:
        return systems.setdefault(
            system_id,
            {
                "system_id": system_id,
                "purposes": [],
                "first_delivery_at": None,
                "last_delivery_at": None,
                "acknowledged_notices": [],
            },
        )

    for row in sql.recipient_rows(conn, subject_id):
        out = entry(row.system_id)
        out["purposes"].append(row.purpose)
        first = clock.rfc3339(row.first_at)
        if out["first_delivery_at"] is None or first < out["first_delivery_at"]:
            out["first_delivery_at"] = first
        if row.last_at is not None:
            last = clock.rfc3339(row.last_at)
            if out["last_delivery_at"] is None or last > out["last_delivery_at"]:
                out["last_delivery_at"] = last
    for row in sql.acknowledged_notices(conn, subject_id):
        entry(row.system_id)["acknowledged_notices"].append(
            {
                "notice_id": row.notice_id,
                "type": row.type,
                "request_id": row.request_id,
                "purposes": None if row.purposes is None else json.loads(row.purposes),
                "acknowledged_at": clock.rfc3339(row.acknowledged_at)
                if row.acknowledged_at
                else None,
            }
        )
    return {"subject_id": subject_id, "systems": [systems[k] for k in sorted(systems)]}
