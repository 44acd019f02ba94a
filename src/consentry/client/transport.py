"""What both clients do with HTTP: encode a call, read an answer, map a refusal to
ConsentryAPIError and a broken exchange to ConsentryConnectionError."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import httpx2 as httpx

from consentry.client.calls import Call
from consentry.client.errors import ConsentryAPIError, ConsentryConnectionError

USER_AGENT = "consentry-client"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Answers after which the same call may simply be sent again: the server did not finish it
# (408: the body came too slowly; 429: over the rate limit) or failed on its side (5xx).
_RETRY_STATUSES = frozenset({408, 429})


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("times carry a time zone (API.md: RFC 3339 UTC)")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode(body: Any) -> bytes:
    """JSON as the API takes it; aware datetimes become RFC 3339 strings."""
    return json.dumps(body, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def headers(api_key: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": USER_AGENT,
        **(extra or {}),
    }


def build(http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    content = None if call.body is None else encode(call.body)
    extra = {"Accept": call.accept}
    if content is not None:
        extra["Content-Type"] = "application/json"
    return http.build_request(
        call.method, call.path, content=content, params=call.query, headers=extra
    )


def answer(response: httpx.Response) -> Any:
    """The body of a 2xx answer (parsed JSON, or text for CSV), or the refusal raised."""
    if not response.is_success:
        raise api_error(response)
    if response.status_code == 204 or not response.content:
        return None
    if is_json(response):
        return response.json()
    return response.text


def is_json(response: httpx.Response) -> bool:
    """application/json or a +json type (problem+json); not JSON Lines."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def api_error(response: httpx.Response) -> ConsentryAPIError:
    """The problem+json of a refusal, or `http_<status>` when the answer is something else."""
    retry_after = _seconds(response.headers.get("retry-after"))
    problem: Any = None
    if is_json(response):
        try:
            problem = response.json()
        except ValueError:
            problem = None
    if isinstance(problem, dict) and isinstance(problem.get("code"), str):
        return ConsentryAPIError(
            response.status_code,
            problem["code"],
            title=str(problem.get("title", "")),
            detail=str(problem.get("detail", "")),
            problem=problem,
            retry_after=retry_after,
        )
    return ConsentryAPIError(
        response.status_code,
        f"http_{response.status_code}",
        title=response.reason_phrase,
        retry_after=retry_after,
    )


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def retryable(error: ConsentryAPIError) -> bool:
    """A refusal that is about the moment, not the call: sending it again may succeed."""
    return error.status >= 500 or error.status in _RETRY_STATUSES


def maybe_processed(error: ConsentryAPIError) -> bool:
    """Whether the server may have done the work although it answered with `error`: a 5xx may
    come after a commit; a 408 or 429 comes before any work."""
    return error.status >= 500


def connection_error(exc: httpx.TransportError) -> ConsentryConnectionError:
    """A broken exchange. Only a refused or timed-out connect (or no free connection in the
    pool) proves the request never reached the server."""
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    reason = str(exc) or type(exc).__name__
    return ConsentryConnectionError(f"{type(exc).__name__}: {reason}", maybe_processed=not unsent)
