"""HTTP handlers for the data map (systems), the record of processing activities, incidents
and model inferences."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from fastapi import Depends, Path, Query, Request, Response
from pydantic import Field, StrictBool, StrictInt, ValidationError
from starlette.concurrency import run_in_threadpool

from consentry import clock, jsonlimits
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.consent.handlers import PurposeIn
from consentry.consent.models import Purpose
from consentry.delivery.worker import resend
from consentry.errors import BodyNotObject, InvalidFideslang, InvalidRequest
from consentry.governance import breach, endpoints, fideslang, inferences, lineage, ropa, vendors
from consentry.governance.assessments import Review
from consentry.governance.datamap import parse, to_definition
from consentry.governance.models import (
    Nature,
    NewIncident,
    NewNotification,
    Risk,
    Role,
    System,
    Vendor,
)
from consentry.http.auth import Ctx, RequestContext
from consentry.http.middleware import is_yaml
from consentry.http.pagination import MAX_LIMIT, encode_cursor, int_position, page
from consentry.http.schemas import Body, Instant
from consentry.ingest.handlers import SchemaIn
from consentry.storage import datamap as sql
from consentry.subjects.handlers import SubjectRefIn

SystemId = Annotated[str, Path(min_length=1, max_length=64)]
NoticeId = Annotated[str, Path(min_length=1, max_length=40)]


class SystemIn(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(max_length=16)
    endpoint: str = Field(min_length=1, max_length=2000)
    purposes: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=50)
    data_categories: list[Annotated[str, Field(max_length=200)]] = Field(max_length=200)
    region: str = Field(max_length=8)
    transfer_mechanism: str = Field(max_length=16)
    dpf_certified_until: str | None = Field(default=None, max_length=10)
    tia_ref: str | None = Field(default=None, min_length=1, max_length=200)
    ccpa_role: str | None = Field(default=None, max_length=20)
    vendor: str | None = Field(default=None, min_length=1, max_length=200)
    dpa_signed: StrictBool
    rights_endpoint: str | None = Field(default=None, min_length=1, max_length=2000)
    ack_hours: StrictInt | None = Field(default=None, ge=1, le=8760)
    # A GVL vendor id (VendorConsents holds ids 1-65535).
    tcf_vendor_id: StrictInt | None = Field(default=None, ge=1, le=65535)
    consent_events: StrictBool = False


def system_out(system: System) -> dict[str, Any]:
    return {"system_id": system.system_id, **to_definition(system)}


def endpoint_resolver() -> endpoints.Resolver:
    """How a system's endpoint names are resolved when it is stored (a dependency, so a test
    can give a slow one)."""
    return endpoints.resolve


Resolver = Annotated[endpoints.Resolver, Depends(endpoint_resolver)]


def put_system(
    system_id: SystemId, body: SystemIn, ctx: Ctx, response: Response, resolver: Resolver
) -> dict[str, Any]:
    """Create or replace a system; the signing secret is in the response that creates it only."""
    rt = ctx.runtime
    # Names resolve here, before the write transaction: up to RESOLVE_SECONDS each, which
    # would otherwise hold the write lock (on SQLite, every other write waits).
    endpoints.check_urls(
        {"endpoint": body.endpoint, "rights_endpoint": body.rights_endpoint},
        allow_private=rt.settings.allow_private_endpoints,
        resolver=resolver,
    )
    with rt.store.write() as conn:
        # The endpoints' addresses were checked above; parse checks their shape.
        system = parse(system_id, body.model_dump(), rt.purposes.all(conn))
        stored, secret = rt.datamap.put(conn, system, actor=ctx.actor)
    response.status_code = 201 if secret is not None else 200
    out = system_out(stored)
    if secret is not None:
        out["signing_secret"] = secret
    return out


def get_system(system_id: SystemId, ctx: Ctx) -> dict[str, Any]:
    """A system, with its undelivered and refused counts."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        system = rt.datamap.get(conn, system_id)
        pending, dead = rt.outbox.counts(conn, system_id)
        refused = sql.refusals(conn, system_id)
    return system_out(system) | {"delivery": {"pending": pending, "dead": dead, "refused": refused}}


def list_systems(ctx: Ctx) -> dict[str, Any]:
    with ctx.runtime.store.read() as conn:
        systems = ctx.runtime.datamap.all(conn)
    return page([system_out(s) for _, s in sorted(systems.items())], None)


def delete_system(system_id: SystemId, ctx: Ctx) -> Response:
    """Remove a system from the data map; what it had not received is not sent."""
    with ctx.runtime.store.write() as conn:
        ctx.runtime.datamap.delete(conn, system_id, actor=ctx.actor)
    return Response(status_code=204)


VendorId = Annotated[str, Path(min_length=1, max_length=64)]
Day = Annotated[str, Field(max_length=10)]


class SubProcessorIn(Body):
    name: str = Field(min_length=1, max_length=200)
    region: str = Field(max_length=8)
    authorised_at: Day


class VendorIn(Body):
    name: str = Field(min_length=1, max_length=200)
    dpa_signed_at: Day | None = None
    dpa_expires_at: Day | None = None
    ccpa_contract_at: Day | None = None
    sub_processors: list[SubProcessorIn] | None = Field(default=None, max_length=200)
    certifications: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=50
    )
    risk: str = Field(max_length=8)
    reviewed_at: Day


def vendor_out(vendor: Vendor, systems: dict[str, System]) -> dict[str, Any]:
    """A vendor as the API shows it: its definition, whether its DPA is in force today, and
    the systems that name it."""
    return {
        "vendor_id": vendor.vendor_id,
        **vendors.to_definition(vendor),
        "dpa_in_force": vendor.dpa_in_force(clock.now().date()),
        "systems": vendors.users(vendor.vendor_id, systems),
    }


def put_vendor(vendor_id: VendorId, body: VendorIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Create or replace a vendor in the register (Art. 28)."""
    rt = ctx.runtime
    vendor = vendors.parse(vendor_id, body.model_dump())
    with rt.store.write() as conn:
        created = rt.vendors.put(conn, vendor, actor=ctx.actor)
        systems = rt.datamap.all(conn)
    response.status_code = 201 if created else 200
    return vendor_out(vendor, systems)


def get_vendor(vendor_id: VendorId, ctx: Ctx) -> dict[str, Any]:
    rt = ctx.runtime
    with rt.store.read() as conn:
        vendor = rt.vendors.get(conn, vendor_id)
        systems = rt.datamap.all(conn)
    return vendor_out(vendor, systems)


def list_vendors(ctx: Ctx) -> dict[str, Any]:
    rt = ctx.runtime
    with rt.store.read() as conn:
        register = rt.vendors.all(conn)
        systems = rt.datamap.all(conn)
    return page([vendor_out(v, systems) for _, v in sorted(register.items())], None)


def delete_vendor(vendor_id: VendorId, ctx: Ctx) -> Response:
    """Remove a vendor from the register; refused while a system names it."""
    rt = ctx.runtime
    with rt.store.write() as conn:
        rt.vendors.delete(conn, vendor_id, rt.datamap.all(conn), actor=ctx.actor)
    return Response(status_code=204)


def get_ropa(
    ctx: Ctx, request: Request, format: Annotated[str | None, Query(max_length=8)] = None
) -> Response:
    """The record of processing activities (Art. 30): JSON, or CSV by Accept or ?format=csv."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        systems = rt.datamap.all(conn)
        rows = ropa.activities(rt.purposes.all(conn), rt.schemas.all(conn), systems)
        processors = ropa.processors(rt.vendors.all(conn), systems)
    if format not in {None, "json", "csv"}:
        raise InvalidRequest("format is json or csv")
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(ropa.to_csv(rows, processors), media_type="text/csv; charset=utf-8")
    body = {"activities": rows, "processors": processors}
    return Response(msgspec.json.encode(body), media_type="application/json")


YAML = "application/yaml"


def export_fideslang(ctx: Ctx) -> Response:
    """Purposes, event schemas and systems as one fideslang document: data uses, datasets and
    systems (YAML)."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        text = fideslang.export(rt.purposes.all(conn), rt.schemas.all(conn), rt.datamap.all(conn))
    return Response(text, media_type=f"{YAML}; charset=utf-8")


async def import_fideslang(request: Request, ctx: Ctx, resolver: Resolver) -> Response:
    """Create or change purposes, event schemas and systems from a fideslang document (YAML,
    or JSON), all or nothing, through the rules of their own PUT routes."""
    body = await request.body()
    yaml_body = is_yaml(request.headers.get("content-type", "").encode("latin-1"))
    out = await run_in_threadpool(_import, body, yaml_body, ctx, resolver)
    return Response(msgspec.json.encode(out), media_type="application/json")


def _import(
    body: bytes, yaml_body: bool, ctx: RequestContext, resolver: endpoints.Resolver
) -> dict[str, Any]:
    rt = ctx.runtime
    if yaml_body:
        document = fideslang.load(body)
    else:
        # A body sent as JSON meets the JSON rule of every route first.
        value = jsonlimits.decode(body)
        if not isinstance(value, dict):
            raise BodyNotObject("the body must be a JSON object")
        document = fideslang.checked(value)
    with rt.store.read() as conn:
        wanted = fideslang.bodies(document, rt.purposes.all(conn))
    purposes = {k: _checked(PurposeIn, b, f"data use {k}") for k, b in wanted.purposes.items()}
    schemas = {k: _checked(SchemaIn, b, f"dataset {k}") for k, b in wanted.schemas.items()}
    systems = {k: _checked(SystemIn, b, f"system {k}") for k, b in wanted.systems.items()}
    for system_in in systems.values():
        endpoints.check_urls(
            {"endpoint": system_in.endpoint, "rights_endpoint": system_in.rights_endpoint},
            allow_private=rt.settings.allow_private_endpoints,
            resolver=resolver,
        )
    secrets: dict[str, str] = {}
    with rt.store.write() as conn:
        for key, purpose in purposes.items():
            rt.purposes.put(conn, Purpose(key=key, **purpose.model_dump()), actor=ctx.actor)
        for event_type, schema in schemas.items():
            rt.schemas.put(
                conn, event_type, schema.model_dump(), rt.purposes.all(conn), actor=ctx.actor
            )
        for system_id, definition in systems.items():
            system = parse(system_id, definition.model_dump(), rt.purposes.all(conn))
            _, secret = rt.datamap.put(conn, system, actor=ctx.actor)
            if secret is not None:
                secrets[system_id] = secret
        counts = {"purposes": len(purposes), "schemas": len(schemas), "systems": len(systems)}
        audit.record(conn, AuditAction.FIDESLANG_IMPORTED, actor=ctx.actor, details=counts)
    return {
        "purposes": sorted(purposes),
        "schemas": sorted(schemas),
        "systems": sorted(systems),
        "signing_secrets": secrets,
        "ignored": wanted.ignored,
    }


M = TypeVar("M", bound=Body)


def _checked(model: type[M], body: dict[str, Any], where: str) -> M:
    """An imported resource as its PUT route reads it, or why not (no value echoed)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(part) for part in first["loc"])
        raise InvalidFideslang(f"{where}: {at}: {first['msg']}") from None


EventType = Annotated[str, Path(min_length=1, max_length=64)]
FieldName = Annotated[str, Path(min_length=1, max_length=64)]


def get_field_lineage(event_type: EventType, field: FieldName, ctx: Ctx) -> dict[str, Any]:
    """Where a schema field can go: its category, treatment, purposes, retention, and the
    systems a delivery would carry it to (the delivery's routing rule over the data map)."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        return lineage.field_lineage(
            event_type,
            field,
            rt.schemas.all(conn),
            rt.purposes.all(conn),
            rt.datamap.all(conn),
        )


def get_subject_lineage(subject_id: str, ctx: Ctx) -> dict[str, Any]:
    """Where the subject's data went: per system the purposes, first and last delivery, and
    the rights notices it acknowledged (from the delivery records; no event content)."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        rt.subjects.get(conn, subject_id)
        return lineage.subject_lineage(conn, subject_id)


def resend_deliveries(system_id: SystemId, ctx: Ctx) -> dict[str, Any]:
    """Send a system's dead-lettered deliveries again, from the first attempt."""
    rt = ctx.runtime
    with rt.store.read() as conn:
        rt.datamap.get(conn, system_id)
    count = resend(rt.store, system_id, actor=ctx.actor)
    rt.outbox.wake.set()
    return {"system_id": system_id, "resent": count}


def acknowledge_notice(notice_id: NoticeId, ctx: Ctx) -> Response:
    """Acknowledge a rights notice by hand (a system without a rights endpoint)."""
    with ctx.runtime.store.write() as conn:
        ctx.runtime.rights_notices.acknowledge(conn, notice_id, actor=ctx.actor)
    return Response(status_code=204)


IncidentId = Annotated[str, Path(min_length=1, max_length=40)]
# Staff's free text: up to 20,000 characters each.
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Count = Annotated[StrictInt, Field(ge=0, le=10**12)]


class WindowIn(Body):
    from_: Instant = Field(alias="from")
    to: Instant


class UsCaResidentsIn(Body):
    count: Count
    acquired_unencrypted_or_with_key: StrictBool


class IncidentIn(Body):
    detected_at: Instant
    aware_at: Instant
    description: Text
    nature: Literal["confidentiality", "integrity", "availability"]
    data_categories: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=200
    )
    risk: Literal["none", "risk", "high"]
    systems: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=200
    )
    window: WindowIn | None = None
    subjects: list[SubjectRefIn] | None = Field(default=None, max_length=1000)
    subjects_estimate: Count | None = None
    records_estimate: Count | None = None
    keys_compromised: StrictBool
    data_encrypted: StrictBool | None = None
    controller_role: Literal["controller", "processor"] = "controller"
    facts: Text | None = None
    likely_consequences: Text | None = None
    measures: Text | None = None
    dpo_contact: Text | None = None
    not_notifiable_reason: Text | None = None
    disproportionate_effort: StrictBool = False
    high_risk_no_longer_likely: StrictBool = False
    data_directory: StrictBool = False
    us_ca_residents: UsCaResidentsIn | None = None


class NotificationIn(Body):
    to: str = Field(max_length=32)
    at: Instant
    reference: Text | None = None
    delay_reasons: list[Text] | None = Field(default=None, min_length=1, max_length=20)


class CloseIn(Body):
    late_reason: Text | None = None


def create_incident(body: IncidentIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Record a breach (Art. 33(5)) with its deadlines and the subjects it affected."""
    region = ctx.runtime.settings.default_phone_region
    texts = {
        "description": body.description,
        "facts": body.facts,
        "likely_consequences": body.likely_consequences,
        "measures": body.measures,
        "dpo_contact": body.dpo_contact,
        "not_notifiable_reason": body.not_notifiable_reason,
    }
    new = NewIncident(
        detected_at=body.detected_at,
        aware_at=body.aware_at,
        nature=Nature(body.nature),
        data_categories=tuple(body.data_categories),
        risk=Risk(body.risk),
        keys_compromised=body.keys_compromised,
        data_encrypted=breach.data_encrypted(
            body.data_encrypted, systems=bool(body.systems), data_directory=body.data_directory
        ),
        role=Role(body.controller_role),
        systems=tuple(dict.fromkeys(body.systems or ())),
        window=None if body.window is None else (body.window.from_, body.window.to),
        subjects=tuple(s.to_ref(region) for s in body.subjects or ()),
        subjects_estimate=body.subjects_estimate,
        records_estimate=body.records_estimate,
        texts={k: v for k, v in texts.items() if v},
        disproportionate_effort=body.disproportionate_effort,
        high_risk_no_longer_likely=body.high_risk_no_longer_likely,
        data_directory=body.data_directory,
        us_ca_residents=None
        if body.us_ca_residents is None
        else (body.us_ca_residents.count, body.us_ca_residents.acquired_unencrypted_or_with_key),
    )
    response.status_code = 201
    return ctx.runtime.incidents.create(new, actor=ctx.actor)


def list_incidents(
    ctx: Ctx,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The breach register in the order incidents were recorded, optionally of one status."""
    after = 0 if cursor is None else int_position(cursor, "after")
    items, last = ctx.runtime.incidents.listing(status=status, after=after, limit=limit)
    return page(items, None if last is None else encode_cursor({"after": last}))


def get_incident(incident_id: IncidentId, ctx: Ctx) -> dict[str, Any]:
    """An incident with its deadlines, notifications and what its record still lacks."""
    return ctx.runtime.incidents.get(incident_id)


def notify_incident(
    incident_id: IncidentId, body: NotificationIn, ctx: Ctx, response: Response
) -> dict[str, Any]:
    """Record a notification of an incident (append-only); a late one says why."""
    new = NewNotification(
        to=body.to,
        at=body.at,
        reference=body.reference,
        delay_reasons=tuple(body.delay_reasons or ()),
    )
    response.status_code = 201
    return ctx.runtime.incidents.notify(incident_id, new, actor=ctx.actor)


def close_incident(
    incident_id: IncidentId, ctx: Ctx, body: CloseIn | None = None
) -> dict[str, Any]:
    """Close an incident; a notice given late, or owed and not given, needs a reason."""
    # The body is optional: an incident with nothing late closes without one.
    late_reason = None if body is None else body.late_reason
    return ctx.runtime.incidents.close(incident_id, late_reason, actor=ctx.actor)


AssessmentId = Annotated[str, Path(min_length=1, max_length=64)]


class AssessmentReviewIn(Body):
    status: Literal["required", "in_progress", "approved", "rejected", "prior_consultation"]
    reviewer: str = Field(min_length=1, max_length=200)
    dpo_advice: Text | None = None
    reviewed_at: Instant | None = None


def list_assessments(ctx: Ctx, required: Annotated[bool | None, Query()] = None) -> dict[str, Any]:
    """The processing (one per purpose) and whether it needs an impact assessment (Art. 35),
    with its risk score, triggers and review."""
    return page(ctx.runtime.assessments.listing(required), None)


def get_assessment(assessment_id: AssessmentId, ctx: Ctx) -> dict[str, Any]:
    """One purpose's impact assessment."""
    return ctx.runtime.assessments.get(assessment_id)


def review_assessment(
    assessment_id: AssessmentId, body: AssessmentReviewIn, ctx: Ctx
) -> dict[str, Any]:
    """Record an assessment's status, the DPO's advice (Art. 35(2)), reviewer and date."""
    review = Review(body.status, body.reviewer, body.dpo_advice, body.reviewed_at)
    return ctx.runtime.assessments.review(assessment_id, review, actor=ctx.actor)


InferenceId = Annotated[str, Path(min_length=1, max_length=40)]
# Names of things, not of people: a model's name and version.
Name = Annotated[str, Field(min_length=1, max_length=200)]


class InferenceInputsIn(Body):
    event_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=1000
    )
    # The data slice the model read: any JSON, sealed under the subject's key.
    data_slice: Any = Field(default=None, alias="slice")


class InferenceIn(Body):
    model: Name
    version: Annotated[str, Field(min_length=1, max_length=100)]
    purpose: str = Field(min_length=1, max_length=64)
    subject: SubjectRefIn
    inputs: InferenceInputsIn = Field(default_factory=InferenceInputsIn)
    # Any JSON: the score, class or decision, sealed under the subject's key.
    output: Any
    automated_decision: StrictBool
    significant_effect: StrictBool


class ContestIn(Body):
    # The subject's point of view (Art. 22(3)), sealed under their key.
    grounds: Text | None = None


class ReviewIn(Body):
    outcome: inferences.Outcome
    explanation: Text


def record_inference(body: InferenceIn, ctx: Ctx, response: Response) -> dict[str, Any]:
    """Record a model inference about a subject, refused without consent for its purpose."""
    new = inferences.NewInference(
        model=body.model,
        version=body.version,
        purpose=body.purpose,
        ref=body.subject.to_ref(ctx.runtime.settings.default_phone_region),
        event_ids=tuple(body.inputs.event_ids),
        data_slice=body.inputs.data_slice,
        output=body.output,
        automated_decision=body.automated_decision,
        significant_effect=body.significant_effect,
    )
    response.status_code = 201
    return ctx.runtime.inferences.record(new, actor=ctx.actor)


def get_inference(inference_id: InferenceId, ctx: Ctx) -> dict[str, Any]:
    """An inference with its inputs, output and review."""
    return ctx.runtime.inferences.get(inference_id)


def contest_inference(
    inference_id: InferenceId, ctx: Ctx, body: ContestIn | None = None
) -> dict[str, Any]:
    """Contest an automated decision: a human review opens (Art. 22(3))."""
    grounds = None if body is None else body.grounds
    return ctx.runtime.inferences.contest(inference_id, grounds, actor=ctx.actor)


def review_inference(inference_id: InferenceId, body: ReviewIn, ctx: Ctx) -> dict[str, Any]:
    """Record the outcome of the human review of a contested inference; the caller reviewed."""
    return ctx.runtime.inferences.review(
        inference_id, body.outcome, body.explanation, actor=ctx.actor
    )
