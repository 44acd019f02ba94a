"""What the HTTP fuzz tests share: an app of their own, the OpenAPI document as schemathesis
reads it, how a schemathesis case is sent through the in-process client, and the rule every
answer keeps (no 5xx; a 4xx is problem+json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY, auth

PROBLEM_JSON = "application/problem+json"


@contextmanager
def fuzz_app(data_dir: Path) -> Iterator[TestClient]:
    """A client of an app with a page_view schema (batches reach the decoding of their events'
    properties), no background workers and no rate limit (a 429 would stop the fuzzing)."""
    settings = Settings(
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
        dsr_poll_seconds=0,
        delivery_worker=False,
        rate_limit=0,
        browser_rate_limit=0,
    )
    with TestClient(create_app(settings)) as client:
        schema = {
            "purposes": ["analytics"],
            "fields": {
                "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
                "count": {"type": "integer", "category": "system.operations", "treatment": "keep"},
            },
        }
        assert client.put("/v1/schemas/page_view", headers=auth(), json=schema).status_code == 201
        yield client


def assert_answered(status: int, content_type: str, what: object) -> None:
    """A 4xx is problem+json with a code; nothing is a 5xx."""
    assert status < 500, what
    if status >= 400:
        assert content_type == PROBLEM_JSON, what


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document as served (building the app opens nothing)."""
    unopened = Settings(admin_key=ADMIN_KEY, master_key=MASTER_KEY)
    return create_app(unopened).openapi()


schema = schemathesis.openapi.from_dict(_openapi())


def send(client: TestClient, case: Any, headers: dict[str, str]) -> Any:
    """The case sent through `client` with `headers` (the caller's key) over its own."""
    kwargs = case.as_transport_kwargs(headers=headers)
    method, url = kwargs.pop("method"), kwargs.pop("url")
    request: dict[str, Any] = {
        "headers": {k: v for k, v in kwargs.get("headers", {}).items() if v is not None},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"]).encode()
        request["headers"].setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data if isinstance(data, bytes) else str(data).encode()
    client.cookies.clear()
    client.cookies.update(kwargs.get("cookies") or {})
    resp = client.request(method, url, **request)
    assert_answered(resp.status_code, resp.headers.get("content-type", ""), (method, url))
    return resp
