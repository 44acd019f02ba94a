"""The record of processing activities (GDPR Art. 30), built from purposes, event schemas, the
data map and the vendor register, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date
from typing import Any

from consentry.consent.models import Purpose
from consentry.governance.models import System, Vendor
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import CompiledSchema

CSV_COLUMNS = (
    "purpose",
    "legal_basis",
    "data_categories",
    "recipients",
    "retention_days",
    "processors",
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
                "vendor": s.vendor,
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


def processors(
    vendors: Mapping[str, Vendor], systems: Mapping[str, System]
) -> list[dict[str, Any]]:
    """The processors in the register (Art. 30(1)(d), 28): each with its DPA and CCPA contract
    dates, sub-processors and their regions, risk, last review, and the systems naming it."""
    return [
        {
            "vendor_id": v.vendor_id,
            "name": v.name,
            "role": "processor",
            "dpa_signed_at": _iso(v.dpa_signed_at),
            "dpa_expires_at": _iso(v.dpa_expires_at),
            "ccpa_contract_at": _iso(v.ccpa_contract_at),
            "sub_processors": [
                {
                    "name": s.name,
                    "region": s.region.value,
                    "authorised_at": s.authorised_at.isoformat(),
                }
                for s in v.sub_processors
            ],
            "certifications": list(v.certifications),
            "risk": v.risk.value,
            "reviewed_at": v.reviewed_at.isoformat(),
            "systems": sorted(s.system_id for s in systems.values() if s.vendor == key),
        }
        for key, v in sorted(vendors.items())
    ]


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def to_csv(rows: list[dict[str, Any]], processors_: list[dict[str, Any]]) -> str:
    """One line per activity; lists joined with `;`, a recipient as id (region, mechanism), a
    processor of its recipients as id (DPA dates, risk, sub-processors with their regions)."""
    by_id = {p["vendor_id"]: p for p in processors_}
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
                ";".join(
                    _processor(by_id[vendor])
                    for vendor in sorted({r["vendor"] for r in row["recipients"] if r["vendor"]})
                    if vendor in by_id
                ),
            )
        )
    return buffer.getvalue()


def _processor(p: dict[str, Any]) -> str:
    subs = ", ".join(f"{s['name']} {s['region']}" for s in p["sub_processors"]) or "none"
    dpa = f"{p['dpa_signed_at'] or 'none'}..{p['dpa_expires_at'] or ''}"
    return f"{p['vendor_id']} (DPA {dpa}, risk {p['risk']}, sub-processors: {subs})"
