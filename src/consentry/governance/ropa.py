"""The record of processing activities (GDPR Art. 30), built from purposes, event schemas and
the data map, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from consentry.consent.models import Purpose
from consentry.governance.models import System
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema

CSV_COLUMNS = (
    "purpose",
    "legal_basis",
    "data_categories",
    "recipients",
    "retention_days",
)


def activities(
    purposes: Mapping[str, Purpose],
    schemas: Mapping[str, CompiledSchema],
    systems: Mapping[str, System],
) -> list[dict[str, Any]]:
    """One activity per purpose: its legal basis, the data categories events keep for it,
    the systems that receive data for it (with region and transfer mechanism), retention."""
    out = []
    for key, purpose in sorted(purposes.items()):
        _, categories = kept_for(key, schemas)
        recipients = [
            {
                "system_id": s.system_id,
                "region": s.region.value,
                "transfer_mechanism": s.transfer_mechanism.value,
            }
            for _, s in sorted(systems.items())
            if key in s.purposes
        ]
        out.append(
            {
                "purpose": key,
                "legal_basis": purpose.legal_basis.value,
                "data_categories": sorted(categories),
                "recipients": recipients,
                "retention_days": purpose.retention_days,
            }
        )
    return out


def kept_for(purpose: str, schemas: Mapping[str, CompiledSchema]) -> tuple[list[str], set[str]]:
    """The event types stored for `purpose` and the data categories their events keep for it
    (fields dropped, or shown to other purposes only, are not)."""
    event_types = []
    categories: set[str] = set()
    for event_type, compiled in sorted(schemas.items()):
        schema = compiled.schema
        if purpose not in schema.purposes:
            continue
        event_types.append(event_type)
        for spec in schema.fields:
            if spec.treatment is Treatment.DROP:
                continue
            if spec.purposes is None or purpose in spec.purposes:
                categories.add(spec.category)
    return event_types, categories


def to_csv(rows: list[dict[str, Any]]) -> str:
    """One line per activity; lists joined with `;`, a recipient as id (region, mechanism)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row["purpose"],
                row["legal_basis"],
                ";".join(row["data_categories"]),
                ";".join(
                    f"{r['system_id']} ({r['region']}, {r['transfer_mechanism']})"
                    for r in row["recipients"]
                ),
                row["retention_days"],
            )
        )
    return buffer.getvalue()
