"""The one URL table: every route, its handler and the permission it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI

from consentry.audit import handlers as audit
from consentry.auth import handlers as auth
from consentry.auth import limits
from consentry.auth.browser import Scope
from consentry.auth.models import Permission as P
from consentry.consent import handlers as consent
from consentry.consent import report
from consentry.dsr import handlers as dsr
from consentry.governance import handlers as governance
from consentry.http import health
from consentry.http.auth import AUTHENTICATED, Authorize
from consentry.http.jsonroute import JsonRoute
from consentry.http.rawroute import RawRoute
from consentry.ingest import handlers as ingest
from consentry.keys import handlers as keys
from consentry.operations import handlers as operations
from consentry.reads import handlers as reads
from consentry.subjects import handlers as subjects

PUBLIC = None


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    endpoint: Callable[..., Any]
    permission: P | str | None
    tag: str
    # A dependency of its own in place of the key check for `permission` (it still refuses a
    # key without it).
    access: Callable[..., Any] | None = None
    # Reachable with a browser key, for the subject named as this says (auth/browser.py);
    # None: never with a browser key.
    browser: Scope | None = None
    # The requests of this route that are never rate-limited (auth/limits.py).
    opt_out: limits.OptOut | None = None
    # A hot path: its handler takes (request, ctx, headers...) and reads the raw body itself
    # (http/rawroute.py; its body is documented by http/openapi.RAW_BODIES).
    raw: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", health.healthz, PUBLIC, "operations"),
    # Also a metrics token, or a loopback client: operations/handlers.py.
    Route(
        "GET",
        "/metrics",
        operations.metrics,
        P.COMPLIANCE_READ,
        "operations",
        operations.MetricsAccess(P.COMPLIANCE_READ),
    ),
    Route("GET", "/.well-known/jwks.json", keys.jwks, PUBLIC, "keys"),
    Route("GET", "/v1/me", auth.me, AUTHENTICATED, "auth"),
    Route("POST", "/v1/api-keys", auth.create_key, P.KEYS_MANAGE, "auth"),
    Route("GET", "/v1/api-keys", auth.list_keys, P.KEYS_MANAGE, "auth"),
    Route("DELETE", "/v1/api-keys/{key_id}", auth.revoke_key, P.KEYS_MANAGE, "auth"),
    Route("POST", "/v1/subjects", subjects.create_subject, P.SUBJECTS_WRITE, "subjects"),
    Route("GET", "/v1/subjects/{subject_id}", subjects.get_subject, P.SUBJECTS_READ, "subjects"),
    Route("GET", "/v1/audit/entries", audit.list_entries, P.AUDIT_READ, "audit"),
    Route("GET", "/v1/audit/head", audit.get_head, P.AUDIT_READ, "audit"),
    Route("GET", "/v1/audit/proof/inclusion", audit.get_inclusion_proof, P.AUDIT_READ, "audit"),
    Route("GET", "/v1/audit/proof/consistency", audit.get_consistency_proof, P.AUDIT_READ, "audit"),
    Route(
        "GET",
        "/v1/purposes",
        consent.list_purposes,
        P.PURPOSES_READ,
        "purposes",
        browser=Scope.NONE,
    ),
    Route(
        "GET",
        "/v1/purposes/{key}",
        consent.get_purpose,
        P.PURPOSES_READ,
        "purposes",
        browser=Scope.NONE,
    ),
    Route("PUT", "/v1/purposes/{key}", consent.put_purpose, P.CONFIG_WRITE, "purposes"),
    Route(
        "GET",
        "/v1/notices/{notice_id}",
        consent.get_notice,
        P.PURPOSES_READ,
        "purposes",
        browser=Scope.NONE,
    ),
    Route("PUT", "/v1/notices/{notice_id}", consent.put_notice, P.CONFIG_WRITE, "purposes"),
    Route(
        "POST",
        "/v1/consents",
        consent.record_consent,
        P.CONSENT_WRITE,
        "consent",
        browser=Scope.BODY,
        opt_out=limits.consent_opt_out,
    ),
    Route(
        "POST",
        "/v1/consents/withdraw",
        consent.withdraw_consent,
        P.CONSENT_WRITE,
        "consent",
        browser=Scope.BODY,
        opt_out=limits.withdrawal,
    ),
    Route(
        "POST",
        "/v1/consents/check",
        consent.check_consent,
        P.CONSENT_CHECK,
        "consent",
        browser=Scope.BODY,
        raw=True,
    ),
    Route("GET", "/v1/consents/report", consent.consent_report, report.PERMISSION, "consent"),
    Route(
        "GET",
        "/v1/subjects/{subject_id}/consent",
        consent.get_consent,
        P.CONSENT_READ,
        "consent",
        browser=Scope.PATH,
    ),
    Route(
        "GET",
        "/v1/subjects/{subject_id}/consent/history",
        consent.get_history,
        P.CONSENT_READ,
        "consent",
    ),
    Route(
        "GET",
        "/v1/subjects/{subject_id}/consent/token",
        consent.get_token,
        P.CONSENT_CHECK,
        "consent",
        browser=Scope.PATH,
    ),
    Route(
        "GET",
        "/v1/subjects/{subject_id}/compliance",
        consent.get_compliance,
        P.CONSENT_READ,
        "consent",
    ),
    Route("GET", "/v1/compliance/summary", operations.get_summary, P.COMPLIANCE_READ, "operations"),
    Route("GET", "/v1/schemas", ingest.list_schemas, P.CONFIG_READ, "events"),
    Route("GET", "/v1/schemas/{event_type}", ingest.get_schema, P.CONFIG_READ, "events"),
    Route("PUT", "/v1/schemas/{event_type}", ingest.put_schema, P.CONFIG_WRITE, "events"),
    Route(
        "POST",
        "/v1/schemas/{event_type}/classify",
        ingest.classify_fields,
        P.CONFIG_WRITE,
        "events",
    ),
    Route("POST", "/v1/tokens/detokenize", ingest.detokenize_values, P.DETOKENIZE, "events"),
    Route(
        "POST",
        "/v1/events",
        ingest.post_events,
        P.EVENTS_WRITE,
        "events",
        browser=Scope.EVENTS,
        raw=True,
    ),
    Route("GET", "/v1/systems", governance.list_systems, P.CONFIG_READ, "data map"),
    Route("GET", "/v1/systems/{system_id}", governance.get_system, P.CONFIG_READ, "data map"),
    Route("PUT", "/v1/systems/{system_id}", governance.put_system, P.CONFIG_WRITE, "data map"),
    Route(
        "DELETE", "/v1/systems/{system_id}", governance.delete_system, P.CONFIG_WRITE, "data map"
    ),
    Route(
        "POST",
        "/v1/systems/{system_id}/resend",
        governance.resend_deliveries,
        P.DELIVERY_MANAGE,
        "data map",
    ),
    Route(
        "POST",
        "/v1/rights-notices/{notice_id}/ack",
        governance.acknowledge_notice,
        P.DELIVERY_MANAGE,
        "data map",
    ),
    Route("GET", "/v1/vendors", governance.list_vendors, P.CONFIG_READ, "data map"),
    Route("GET", "/v1/vendors/{vendor_id}", governance.get_vendor, P.CONFIG_READ, "data map"),
    Route("PUT", "/v1/vendors/{vendor_id}", governance.put_vendor, P.CONFIG_WRITE, "data map"),
    Route(
        "DELETE", "/v1/vendors/{vendor_id}", governance.delete_vendor, P.CONFIG_WRITE, "data map"
    ),
    Route("GET", "/v1/ropa", governance.get_ropa, P.ROPA_READ, "data map"),
    Route("GET", "/v1/assessments", governance.list_assessments, P.ASSESSMENTS_READ, "assessments"),
    Route(
        "GET",
        "/v1/assessments/{assessment_id}",
        governance.get_assessment,
        P.ASSESSMENTS_READ,
        "assessments",
    ),
    Route(
        "PUT",
        "/v1/assessments/{assessment_id}",
        governance.review_assessment,
        P.ASSESSMENTS_WRITE,
        "assessments",
    ),
    Route(
        "GET",
        "/v1/lineage/fields/{event_type}/{field}",
        governance.get_field_lineage,
        P.CONFIG_READ,
        "data map",
    ),
    Route(
        "GET",
        "/v1/subjects/{subject_id}/lineage",
        governance.get_subject_lineage,
        P.LINEAGE_READ,
        "data map",
    ),
    Route("GET", "/v1/fideslang", governance.export_fideslang, P.CONFIG_READ, "data map"),
    Route("POST", "/v1/fideslang", governance.import_fideslang, P.CONFIG_WRITE, "data map"),
    Route("POST", "/v1/query", reads.post_query, P.DATA_READ, "reads"),
    Route("GET", "/v1/events", reads.get_events, P.DATA_READ, "reads"),
    Route("POST", "/v1/exports", reads.post_export, P.DATA_READ, "reads"),
    Route("GET", "/v1/exports/{export_id}", reads.get_export, P.DATA_READ, "reads"),
    Route("GET", "/v1/exports/{export_id}/download", reads.download_export, P.DATA_READ, "reads"),
    Route(
        "POST",
        "/v1/requests",
        dsr.create_request,
        P.REQUESTS_MANAGE,
        "requests",
        opt_out=limits.objection,
    ),
    Route("GET", "/v1/requests", dsr.list_requests, P.REQUESTS_MANAGE, "requests"),
    Route("GET", "/v1/requests/{request_id}", dsr.get_request, P.REQUESTS_MANAGE, "requests"),
    Route(
        "POST",
        "/v1/requests/{request_id}/verify",
        dsr.verify_request,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route(
        "POST",
        "/v1/requests/{request_id}/extend",
        dsr.extend_request,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route(
        "POST",
        "/v1/requests/{request_id}/reject",
        dsr.reject_request,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route(
        "POST",
        "/v1/requests/{request_id}/acks",
        dsr.acknowledge_request,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route(
        "POST",
        "/v1/requests/{request_id}/decision",
        dsr.decide_objection,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route(
        "GET", "/v1/requests/{request_id}/result", dsr.request_result, P.REQUESTS_MANAGE, "requests"
    ),
    Route("POST", "/v1/portal-links", dsr.create_portal_link, P.PORTAL_LINKS, "portal"),
    Route(
        "DELETE",
        "/v1/subjects/{subject_id}/restriction",
        dsr.lift_restriction,
        P.REQUESTS_MANAGE,
        "requests",
    ),
    Route("POST", "/v1/incidents", governance.create_incident, P.INCIDENTS_MANAGE, "incidents"),
    Route("GET", "/v1/incidents", governance.list_incidents, P.INCIDENTS_MANAGE, "incidents"),
    Route(
        "GET",
        "/v1/incidents/{incident_id}",
        governance.get_incident,
        P.INCIDENTS_MANAGE,
        "incidents",
    ),
    Route(
        "POST",
        "/v1/incidents/{incident_id}/notifications",
        governance.notify_incident,
        P.INCIDENTS_MANAGE,
        "incidents",
    ),
    Route(
        "POST",
        "/v1/incidents/{incident_id}/close",
        governance.close_incident,
        P.INCIDENTS_MANAGE,
        "incidents",
    ),
    # Recorded by those who send events; contested and reviewed as requests are handled.
    Route("POST", "/v1/inferences", governance.record_inference, P.EVENTS_WRITE, "inferences"),
    Route(
        "GET",
        "/v1/inferences/{inference_id}",
        governance.get_inference,
        P.REQUESTS_MANAGE,
        "inferences",
    ),
    Route(
        "POST",
        "/v1/inferences/{inference_id}/contest",
        governance.contest_inference,
        P.REQUESTS_MANAGE,
        "inferences",
    ),
    Route(
        "PUT",
        "/v1/inferences/{inference_id}/review",
        governance.review_inference,
        P.REQUESTS_MANAGE,
        "inferences",
    ),
)


def register(app: FastAPI) -> None:
    """Add every route of the table to `app`, each behind its permission check."""
    app.router.route_class = JsonRoute
    # The router tries routes in turn, each a regular expression: the hot paths are tried
    # first (the OpenAPI document keeps this table's order: http/openapi.py).
    for route in sorted(ROUTES, key=lambda r: not r.raw):
        dependencies = (
            []
            if route.permission is None
            else [
                Depends(
                    Authorize(route.permission, browser_scope=route.browser, opt_out=route.opt_out)
                )
            ]
        )
        if route.access is not None:
            dependencies = [Depends(route.access)]
        app.router.add_api_route(
            route.path,
            route.endpoint,
            methods=[route.method],
            dependencies=dependencies,
            tags=[route.tag],
            summary=(route.endpoint.__doc__ or route.endpoint.__name__).split("\n")[0],
            route_class_override=RawRoute if route.raw else None,
        )
