"""The categories-only access report (`"scope": "categories"`): what kinds of data are held
about the subject, from where, why and for whom, without any value of it (regs §7062(b))."""

from __future__ import annotations

import json
from typing import Any

from consentry import clock
from consentry.consent.purposes import PurposeRegistry
from consentry.dsr.access import RIGHTS
from consentry.dsr.downstream import Downstream
from consentry.ingest.models import Treatment
from consentry.ingest.schemas import SchemaRegistry
from consentry.storage import consent as consent_sql
from consentry.storage import ingest as events_sql
from consentry.storage import subjects as subjects_sql
from consentry.storage.engine import Store
from consentry.subjects.models import IDENTITY_CATEGORIES


def report(
    store: Store,
    downstream: Downstream,
    schemas: SchemaRegistry,
    purposes: PurposeRegistry,
    subject_id: str,
    *,
    request_id: str,
) -> dict[str, Any]:
    """Categories of personal data (of the subject's identities, and of the fields the
    schemas of its events keep), categories of sources, the purposes its data serves with
    their legal basis and retention, and the recipients (by name, region and safeguard).
    Read from the store without opening anything sealed: the subject's key is not needed."""
    with store.read() as conn:
        kinds = events_sql.event_kinds(conn, subject_id)
        identity_types = {row.type for row in subjects_sql.identity_rows(conn, subject_id)}
        ledger = consent_sql.subject_entries(conn, subject_id)
        known = schemas.all(conn)
        registry = purposes.all(conn)
        recipients = downstream.recipients(conn, subject_id)
    categories = {IDENTITY_CATEGORIES[t] for t in identity_types if t in IDENTITY_CATEGORIES}
    used: set[str] = {row.purpose for row in ledger}
    for row in kinds:
        used.update(json.loads(row.purposes))
        compiled = known.get(row.event_type)
        if compiled is None:
            continue
        categories.update(
            spec.category
            for spec in compiled.fields.values()
            if spec.personal and spec.treatment is not Treatment.DROP
        )
    sources = sorted({f"consent record ({row.source})" for row in ledger})
    if kinds:
        sources.insert(0, "collected from you (events)")
    return {
        "request_id": request_id,
        "subject_found": True,
        "subject_id": subject_id,
        "scope": "categories",
        "generated_at": clock.rfc3339(clock.now()),
        "categories": sorted(categories),
        "sources": sources,
        "purposes": {
            key: {
                "name": p.name,
                "legal_basis": p.legal_basis.value,
                "retention_days": p.retention_days,
                "description": p.description,
            }
            for key, p in sorted(registry.items())
            if key in used
        },
        "recipients": [
            {k: r.get(k) for k in ("name", "region", "transfer_mechanism", "safeguard", "purposes")}
            for r in recipients
        ],
        "rights": RIGHTS,
    }
