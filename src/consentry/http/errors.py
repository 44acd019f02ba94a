"""problem+json (RFC 9457): the only place that knows HTTP status codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from consentry import errors as e
from consentry.http.headers import DEFAULTS
from consentry.storage.errors import SerializationFailure

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:consentry:error:"

# The most specific class listed for an error decides its status; subclasses inherit.
STATUS: dict[type[e.ConsentryError], int] = {
    e.ConsentryError: 500,
    e.InvalidRequest: 422,
    e.TooManyGroups: 422,
    e.MalformedJSON: 400,
    e.MalformedYaml: 400,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.InvalidCursor: 400,
    e.BodyTimeout: 408,
    e.HeadTimeout: 408,
    e.MalformedHTTP: 400,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.MethodNotAllowed: 405,
    e.Conflict: 409,
    e.SubjectKeyDestroyed: 410,
    e.SubjectErased: 410,
    e.KeyUnwrapFailed: 500,
    e.InvalidSetting: 500,
    e.StorageUnavailable: 503,
    e.PrivacyBudgetExhausted: 429,
    e.RateLimited: 429,
    # Too many failed sign-ins: try again later (Retry-After-like `unlocks_at`), like a rate
    # limit; 423 is WebDAV's lock of a resource, not of an account.
    e.AccountLocked: 429,
    e.EnrolmentInvalid: 410,
}


def status_of(error: type[e.ConsentryError]) -> int:
    for cls in error.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(error: e.ConsentryError, *, errors: list[dict[str, Any]] | None = None) -> Response:
    """The one error shape: type, title, status, detail, code (+ errors, + safe context)."""
    status = status_of(type(error))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 408:
        # The rest of a body that came too slowly may still arrive: the connection cannot
        # carry another request after it.
        headers = {"Connection": "close"}
    if isinstance(error, e.RateLimited):
        headers = {"Retry-After": str(error.context.get("retry_after", 1))}
    return Response(
        problem_bytes(error, errors=errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_bytes(error: e.ConsentryError, *, errors: list[dict[str, Any]] | None = None) -> bytes:
    """The problem+json body of `error` (also written by the HTTP protocol's own 400s)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + error.code,
        "title": error.title,
        "status": status_of(type(error)),
        "detail": error.detail,
        "code": error.code,
    }
    body.update(_safe_context(error.context))
    if errors:
        body["errors"] = errors
    # ASCII escapes: a detail that quotes a malformed string (a lone surrogate) still renders.
    return json.dumps(body, ensure_ascii=True).encode()


_MEMBERS = {"type", "title", "status", "detail", "code", "errors", "instance"}


def _safe_context(context: Mapping[str, Any]) -> dict[str, Any]:
    # Context carries ids and names of things, never values a caller sent about a person.
    return {
        k: v
        for k, v in context.items()
        if k not in _MEMBERS and (isinstance(v, str | int | bool) or v is None)
    }


async def _on_consentry_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, e.ConsentryError):
        raise TypeError("handler registered for ConsentryError only")
    if status_of(type(exc)) >= 500:
        log.error("request failed: %s (%s)", exc.code, type(exc).__name__)
    return problem(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise TypeError("handler registered for RequestValidationError only")
    details = [_describe(err) for err in exc.errors()]
    kinds = {err.get("type") for err in exc.errors()}
    error: e.ConsentryError
    if "json_invalid" in kinds:
        error = e.MalformedJSON("the body is not valid JSON")
    elif "extra_forbidden" in kinds:
        names = ", ".join(d["field"] for d in details if d["type"] == "extra_forbidden")
        error = e.UnknownField(f"unknown field: {names}")
    else:
        error = e.InvalidRequest("; ".join(f"{d['field']}: {d['message']}" for d in details))
    return problem(error, errors=details)


def _describe(err: Mapping[str, Any]) -> dict[str, Any]:
    # Pydantic echoes the input it refused; that may be personal data, so it is left out.
    loc = [str(part) for part in err.get("loc", ()) if part != "body"]
    return {
        "field": ".".join(loc) or "body",
        "type": str(err.get("type", "")),
        "message": str(err.get("msg", "")),
    }


async def _on_http_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise TypeError("handler registered for HTTPException only")
    error: e.ConsentryError
    if isinstance(exc.__cause__, e.ConsentryError):
        # FastAPI wraps failures while reading the body (our size limit among them).
        return problem(exc.__cause__)
    if exc.status_code == 404:
        error = e.NotFound("no such resource")
    elif exc.status_code == 405:
        error = e.MethodNotAllowed("this resource does not take that method")
    elif exc.status_code == 401:
        error = e.Unauthenticated()
    else:
        error = e.InvalidRequest(str(exc.detail))
    return problem(error)


async def _on_disconnect(_request: Request, _exc: Exception) -> Response:
    # The client left mid-body: nobody reads an answer, and it is no fault of ours to log.
    return Response(status_code=400)


async def _on_lock_cycle(_request: Request, _exc: Exception) -> Response:
    # PostgreSQL failed the transaction to break a lock cycle or a serialization conflict:
    # nothing of it was written, and the request, sent again, may well succeed.
    response = problem(
        e.StorageUnavailable(
            "the database undid this change to resolve a conflict with a concurrent one; "
            "send the request again"
        )
    )
    response.headers["Retry-After"] = "1"
    return response


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    # The type only: an exception's message may quote data it was handed.
    log.error("unexpected %s while serving a request", type(exc).__name__)
    response = problem(e.ConsentryError("an unexpected error occurred; it has been logged"))
    # Answered outside the middleware that adds them to every other answer (Starlette's
    # server-error middleware is the outermost).
    response.headers.update(DEFAULTS)
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""
    app.add_exception_handler(e.ConsentryError, _on_consentry_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ClientDisconnect, _on_disconnect)
    app.add_exception_handler(SerializationFailure, _on_lock_cycle)
    app.add_exception_handler(Exception, _on_unexpected)
