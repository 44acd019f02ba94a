"""The OpenAPI document (security, raw bodies, errors, names) and /docs and /redoc, served
with assets of our own."""

from __future__ import annotations

import re
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import HTMLResponse

from consentry.auth.models import Permission
from consentry.consent.handlers import CheckIn
from consentry.http import headers
from consentry.http.errors import PROBLEM_JSON
from consentry.http.routes import ROUTES, Route
from consentry.ingest.decode import MAX_EVENTS
from consentry.subjects.handlers import SubjectRefIn

# Swagger UI and ReDoc as the pinned fastapi-offline wheel ships them: no page of ours loads
# anything from another host, so /docs works offline and leaks no visit to a CDN.
ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs/assets"
BEARER = "bearer"


class EventIn(BaseModel):
    """One event, as `POST /v1/events` reads it (the pipeline decodes the raw body itself)."""

    # As the pipeline's decoder: a field the contract lacks refuses the event (invalid_event).
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(max_length=128, description="Unique per event; a repeat is refused.")
    event_type: str = Field(description="An event type with a schema (`PUT /v1/schemas/...`).")
    occurred_at: datetime = Field(description="RFC 3339.")
    subject: SubjectRefIn
    consent_token: str | None = Field(default=None, description="A token from the ledger.")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="The fields of the event type's schema."
    )
    gpc: bool = Field(default=False, description="Global Privacy Control seen for this event.")


class EventBatchIn(BaseModel):
    """A batch of events; each is accepted or refused with its own code. An empty batch is
    answered 200 with no result (docs/decisions.md)."""

    # As the pipeline's decoder: a field the contract lacks refuses the batch (invalid_batch).
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(max_length=MAX_EVENTS)
    gpc: bool = Field(default=False, description="Global Privacy Control, for every event.")


class EventResult(BaseModel):
    event_id: str | None
    status: str = Field(description="accepted or rejected")
    purposes: list[str] = Field(description="The purposes it is stored for.")
    code: str | None = Field(default=None, description="Why it was refused (docs/ingest.md).")
    detail: str | None = Field(
        default=None, description="Which field and rule refused it; never a value."
    )


class EventResults(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


# Routes whose handler reads the raw body (no pydantic parameter): (body, 200 answer).
RAW_BODIES: dict[tuple[str, str], tuple[type[BaseModel], type[BaseModel] | None]] = {
    ("POST", "/v1/events"): (EventBatchIn, EventResults),
    ("POST", "/v1/consents/check"): (CheckIn, None),
}
# Routes whose body is YAML (http/middleware.YAML_PATHS): what the body is.
YAML_BODIES: dict[tuple[str, str], str] = {
    ("POST", "/v1/fideslang"): (
        "A fideslang document (`application/yaml`): data uses, datasets and systems, as "
        "`GET /v1/fideslang` writes them (docs/governance.md)"
    ),
}

SUMMARIES: dict[str, str] = {
    "healthz": "Health check",
    "jwks": "Public keys that verify consent tokens and audit heads (JWKS)",
    "me": "The calling key: its role and permissions",
    "create_key": "Create an API key",
    "list_keys": "List API keys",
    "revoke_key": "Revoke an API key",
    "create_subject": "Find or create a subject by its identities",
    "get_subject": "Get a subject",
    "list_entries": "List audit log entries",
    "get_head": "The latest signed audit tree head",
    "get_inclusion_proof": "Prove an audit entry is in the tree",
    "get_consistency_proof": "Prove a tree head extends an earlier one",
    "list_purposes": "List purposes",
    "get_purpose": "Get a purpose",
    "put_purpose": "Create or change a purpose",
    "put_notice": "Publish a notice version",
    "record_consent": "Record consent",
    "withdraw_consent": "Withdraw consent",
    "check_consent": "Check consent for a purpose",
    "get_consent": "A subject's consent now",
    "get_history": "A subject's consent history",
    "get_token": "A subject's consent token",
    "list_schemas": "List event schemas",
    "get_schema": "Get an event schema",
    "put_schema": "Create or replace an event schema",
    "detokenize_values": "Turn tokens back into values (audited)",
    "post_events": "Send a batch of events",
    "list_systems": "List systems (the data map)",
    "get_system": "Get a system, with its delivery counts",
    "put_system": "Register or change a system",
    "delete_system": "Remove a system",
    "resend_deliveries": "Resend a system's dead-lettered deliveries",
    "acknowledge_notice": "Acknowledge a rights notice",
    "get_ropa": "The record of processing activities (Art. 30)",
    "list_vendors": "List vendors (the Art. 28 register)",
    "get_vendor": "Get a vendor",
    "put_vendor": "Register or change a vendor",
    "delete_vendor": "Remove a vendor no system names",
    "export_fideslang": "Export systems, datasets and data uses as fideslang YAML",
    "import_fideslang": "Import systems, datasets and data uses from fideslang YAML",
    "post_query": "Count what a purpose may read",
    "get_events": "Read the events a purpose may read",
    "post_export": "Start an export for a purpose",
    "get_export": "Get an export",
    "download_export": "Download an export (consent checked again)",
    "create_request": "Receive a data-subject request",
    "list_requests": "List data-subject requests",
    "get_request": "Get a data-subject request",
    "verify_request": "Verify a request's subject",
    "extend_request": "Extend a request's deadline",
    "reject_request": "Reject a request",
    "acknowledge_request": "Record a system's acknowledgement of a request",
    "decide_objection": "Decide an objection",
    "request_result": "A request's result (the access report or the data)",
    "lift_restriction": "Lift a subject's restriction",
}

_CREATED = "Created"
_REPLACED = "Replaced: it existed already"
# Successes other than FastAPI's default (200 with the handler's JSON), by handler: each
# status the handler answers and what it means. 204 has no body; the others keep the JSON.
SUCCESSES: dict[str, dict[int, str]] = {
    "create_key": {201: "Created: the key is in this answer, and only in this one"},
    "create_subject": {
        201: "Created: nobody was known by these identities",
        200: "Found: the subject these identities (or this subject_id) name",
    },
    "put_purpose": {201: _CREATED, 200: _REPLACED},
    "put_notice": {201: "Published", 200: "This version was published before with this text"},
    "put_schema": {201: _CREATED, 200: _REPLACED},
    "put_system": {201: "Registered: the signing secret is in this answer only", 200: _REPLACED},
    "create_request": {202: "Received; it runs in the background once verified"},
    "delete_system": {204: "Removed"},
    "put_vendor": {201: _CREATED, 200: _REPLACED},
    "delete_vendor": {204: "Removed"},
    "acknowledge_notice": {204: "Acknowledged"},
}

_TEXT: dict[str, Any] = {"schema": {"type": "string"}}
# 200 answers that are not (only) JSON, by handler: what selects each, and the media types.
MEDIA: dict[str, tuple[str, tuple[str, ...]]] = {
    "consent_report": (
        "A page of ledger entries as JSON by default; the whole report as CSV with "
        "`Accept: text/csv` or `?format=csv`",
        ("application/json", "text/csv"),
    ),
    "get_ropa": (
        "JSON by default; CSV with `Accept: text/csv` or `?format=csv`",
        ("application/json", "text/csv"),
    ),
    "export_fideslang": (
        "A fideslang document: data uses, datasets and systems",
        ("application/yaml",),
    ),
    "download_export": (
        "The export's events as they may be read now: JSON Lines (format `jsonl`) or CSV",
        ("application/x-ndjson", "text/csv"),
    ),
    "request_result": (
        "The request's result: the access report, or the portable data (what the subject "
        "provided, on consent or contract; CSV with `Accept: text/csv` or format `csv`); other "
        "persons' data in both redacted",
        ("application/json", "text/csv"),
    ),
}

# Statuses a handler's own domain can answer, beyond those its shape implies (_statuses).
DOMAIN_STATUSES: dict[str, tuple[int, ...]] = {
    "create_subject": (404, 409),
    "get_subject": (410,),
    "put_purpose": (409,),
    "put_notice": (409,),
    "put_schema": (409,),
    "delete_vendor": (409,),
    # 404: a subject_id that names nobody (subject_not_found).
    "record_consent": (404, 409, 410),
    "withdraw_consent": (404, 409, 410),
    "check_consent": (409,),
    "get_consent": (410,),
    "get_history": (410,),
    "get_token": (410,),
    "get_inclusion_proof": (404,),
    "get_consistency_proof": (404,),
    "post_query": (429,),
    "download_export": (409,),
    "create_request": (409, 410),
    "verify_request": (409,),
    "extend_request": (409,),
    "reject_request": (409,),
    "acknowledge_request": (409,),
    "decide_objection": (409,),
    "request_result": (409,),
    "lift_restriction": (409, 410),
}

STATUS_TEXT: dict[int, str] = {
    400: (
        "A body that breaks the JSON rule (`malformed_json`, `invalid_utf8`, `json_too_deep`,"
        " `invalid_number`) or a cursor not given by us (`invalid_cursor`)"
    ),
    401: "No valid API key (`unauthenticated`)",
    403: "The key's role lacks the permission (`forbidden`)",
    404: "Not found",
    408: "The body did not arrive in time (`body_timeout`)",
    409: "Conflicts with the current state",
    410: "The subject is erased: its data key is gone",
    413: "The body is too large (`payload_too_large`)",
    415: "The body is not JSON (`unsupported_media_type`)",
    422: "Invalid input: its `code` says which rule",
    429: "The key's daily differential-privacy budget is spent (`privacy_budget_exhausted`)",
    500: "An internal failure, never caused by input (logged)",
    503: "Storage is unavailable (`storage_unavailable`)",
}

PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable (docs/errors.md).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "example": "urn:consentry:error:notice_required"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "notice_required"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc with our own assets, and build /openapi.json with the bearer
    scheme, the raw bodies, problem+json errors and readable operation names."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _in_english(
            get_swagger_ui_html(
                openapi_url=f"{root}/openapi.json",
                title=f"{app.title} API",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                # No validator badge (it calls another host). The key is not kept across reloads:
                # Swagger UI would keep it in localStorage, which any page of this origin (the
                # portal, the dashboard) can read.
                swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
            ),
            inline_styles=False,
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _in_english(
            get_redoc_html(
                openapi_url=f"{root}/openapi.json",
                title=f"{app.title} API",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            ),
            # ReDoc (styled-components) writes its styles as <style> elements.
            inline_styles=True,
        )

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _in_english(page: HTMLResponse, *, inline_styles: bool) -> HTMLResponse:
    """The page with `<html lang="en">` (FastAPI's templates name no language, which screen
    readers need to pick a voice, WCAG 3.1.1) and its content security policy."""
    html = bytes(page.body).decode().replace("<html>", '<html lang="en">', 1)
    policy = headers.docs_csp(html, inline_styles=inline_styles)
    return HTMLResponse(
        html,
        status_code=page.status_code,
        headers=headers.PAGE_HEADERS | {"Content-Security-Policy": policy},
    )


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app's routes, completed from the URL table."""
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`consentry api-key create --role ROLE`, or the admin "
            "key `consentry serve` announces).",
        }
    }
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        _name(operation, route)
        if (route.method, route.path) in RAW_BODIES:
            _raw_body(operation, schemas, *RAW_BODIES[(route.method, route.path)])
        if (route.method, route.path) in YAML_BODIES:
            operation["requestBody"] = {
                "required": True,
                "description": YAML_BODIES[(route.method, route.path)],
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    # The same document as JSON, which is YAML too.
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        _successes(operation, route)
        _security(operation, route)
        _errors(operation, route)
    # In the URL table's order, whatever order the router tries them in (routes.register).
    order = {route.path: n for n, route in reversed(list(enumerate(ROUTES)))}
    doc["paths"] = dict(sorted(doc["paths"].items(), key=lambda item: order[item[0]]))
    # FastAPI's own validation-error shapes are never sent: every error is a Problem.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def _name(operation: dict[str, Any], route: Route) -> None:
    name = route.endpoint.__name__
    first, *rest = name.split("_")
    operation["operationId"] = first + "".join(part.capitalize() for part in rest)
    doc_line = (route.endpoint.__doc__ or "").strip().split("\n")[0]
    operation["summary"] = SUMMARIES.get(name) or doc_line or name.replace("_", " ").capitalize()
    if doc_line and doc_line != operation["summary"]:
        operation["description"] = (route.endpoint.__doc__ or "").strip()


def _raw_body(
    operation: dict[str, Any],
    schemas: dict[str, Any],
    body: type[BaseModel],
    answer: type[BaseModel] | None,
) -> None:
    operation["requestBody"] = {"required": True, "content": _json(body, schemas)}
    if answer is not None:
        operation["responses"]["200"]["content"] = _json(answer, schemas)


def _json(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _successes(operation: dict[str, Any], route: Route) -> None:
    responses = operation["responses"]
    name = route.endpoint.__name__
    answer = responses.pop("200")
    for status, description in SUCCESSES.get(name, {200: answer["description"]}).items():
        if status == 204:
            responses["204"] = {"description": description}
        else:
            responses[str(status)] = answer | {"description": description}
    if name in MEDIA:
        description, media_types = MEDIA[name]
        json_schema = answer.get("content", {}).get("application/json", {"schema": {}})
        responses["200"]["description"] = description
        responses["200"]["content"] = {
            media: json_schema if media == "application/json" else _TEXT for media in media_types
        }


def _security(operation: dict[str, Any], route: Route) -> None:
    if route.permission is None:
        operation["security"] = []
        return
    operation["security"] = [{BEARER: []}]
    if isinstance(route.permission, Permission):
        needs = f"Needs the `{route.permission.value}` permission."
    else:
        needs = "Open to any valid API key."
    description = operation.get("description")
    operation["description"] = f"{description}\n\n{needs}" if description else needs


def _statuses(operation: dict[str, Any], route: Route) -> set[int]:
    """The error statuses this operation can answer, from its shape and its domain."""
    statuses = {422, 500}  # 422: any URL with a NUL character, whatever the route
    if route.permission is not None:
        statuses |= {401, 503}
        if isinstance(route.permission, Permission):
            statuses.add(403)
    if "requestBody" in operation:
        statuses |= {400, 408, 413, 415}
    if re.search(r"\{\w+\}", route.path):
        statuses.add(404)
    if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
        statuses.add(400)
    return statuses | set(DOMAIN_STATUSES.get(route.endpoint.__name__, ()))


def _errors(operation: dict[str, Any], route: Route) -> None:
    responses = operation.setdefault("responses", {})
    for status in _statuses(operation, route):
        responses[str(status)] = {
            "description": STATUS_TEXT[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    operation["responses"] = dict(sorted(responses.items()))
