"""Fixtures of the client tests: a real gateway on a loopback port (uvicorn in a thread, on
each back-end), with a notice and a page_view schema, and what the tests send to it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from consentry.client import Client, identity
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, BACKENDS, MASTER_KEY, fresh_pg_database
from tests.servers import LiveServer, serving_app

NOTICE = ("main", "1")
SCHEMA: dict[str, Any] = {
    "purposes": ["analytics"],
    "fields": {
        "url": {
            "type": "string",
            "category": "system.operations",
            "treatment": "keep",
            "required": True,
        }
    },
}

_people = itertools.count()


def prepare(client: Client) -> None:
    """The configuration events need: a notice covering analytics, the page_view schema."""
    client.notices.put(
        NOTICE[0], version=NOTICE[1], text="We count page views.", purposes=["analytics"]
    )
    client.schemas.put("page_view", purposes=SCHEMA["purposes"], fields=SCHEMA["fields"])


def person() -> str:
    """A fictional e-mail address nobody else in the run uses."""
    return f"visitor.{next(_people)}.{uuid.uuid4().hex[:8]}@example.com"


def page_view(email: str, n: int = 0, *, event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": "page_view",
        "occurred_at": datetime.now(UTC),
        "subject": identity("email", email),
        "properties": {"url": f"https://shop.example.com/p/{n}"},
    }
    if event_id is not None:
        event["event_id"] = event_id
    return event


def stored_ids(client: Client) -> list[str]:
    """The ids of every page_view stored for analytics, each as often as it is stored."""
    ids: list[str] = []
    cursor = None
    while True:
        found = client.events.list("analytics", event_type="page_view", limit=1000, cursor=cursor)
        ids.extend(str(item["event_id"]) for item in found["items"])
        cursor = found["next"]
        if cursor is None:
            return ids


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One gateway per back-end for the module's tests (each test uses its own people)."""
    db = ""
    if request.param == "postgresql":
        db = fresh_pg_database(request.getfixturevalue("pg_url"))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("client") / "data",
        db=db,
        admin_key=ADMIN_KEY,
        master_key=MASTER_KEY,
    )
    with serving_app(settings) as live:
        with Client(live.url, ADMIN_KEY) as client:
            prepare(client)
        yield live


@pytest.fixture
def client(gateway: LiveServer) -> Iterator[Client]:
    with Client(gateway.url, ADMIN_KEY) as api:
        yield api


@pytest.fixture
def consenting(client: Client) -> str:
    """A person who granted analytics."""
    email = person()
    client.consents.grant(identity("email", email), ["analytics"], notice=NOTICE, jurisdiction="EU")
    return email
