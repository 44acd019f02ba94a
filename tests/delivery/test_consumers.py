"""Registered consumers of the stream mode's consented topics, on both back-ends (no broker): a
`kind: kafka` system whose endpoint names `consentry.consented.<purpose>` must serve that
purpose, and the outbox never queues deliveries to it (the stream produces its records:
tests/stream/test_consumers.py)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.governance import routing
from consentry.storage import datamap as datamap_sql
from consentry.storage.configuration import bump_config_version
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.http.test_conventions import assert_problem
from tests.ingest.test_pipeline import grant, send, who


def _consumer(purpose: str, **extra: Any) -> dict[str, Any]:
    return (
        system(f"kafka://broker.example.com:9093/consentry.consented.{purpose}", kind="kafka")
        | {"purposes": [purpose]}
        | extra
    )


def test_a_consumer_must_serve_its_topics_purpose(gateway: TestClient) -> None:
    for body in (
        _consumer("marketing", purposes=["analytics"]),
        # Updating a consumer away from its topic's purpose is refused the same way.
        _consumer("analytics", purposes=["personalization"]),
    ):
        assert_problem(
            gateway.put("/v1/systems/reader", headers=auth(), json=body),
            422,
            "invalid_system",
        )
    add(gateway, "reader", _consumer("analytics"))
    assert_problem(
        gateway.put(
            "/v1/systems/reader",
            headers=auth(),
            json=_consumer("analytics", purposes=["marketing"]),
        ),
        422,
        "invalid_system",
    )
    # Any other topic is an ordinary Kafka system's (the outbox delivers to it).
    add(
        gateway,
        "topic-reader",
        system("kafka://broker.example.com:9093/consentry.consentedx", kind="kafka"),
    )


def test_the_outbox_queues_nothing_for_a_consumer(gateway: TestClient) -> None:
    grant(gateway, who("ana"), "analytics", "personalization")
    add(gateway, "reader", _consumer("analytics"))
    add(gateway, "warehouse", system("https://warehouse.example.com/events"))
    assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
    rt = runtime_of(gateway)
    with rt.store.read() as conn:
        queued = sorted(r.system_id for r in conn.execute(select(outbox.c.system_id)))
        systems = rt.datamap.all(conn)
    assert queued == ["warehouse"]
    assert not routing.queued(systems["reader"])
    assert [s.system_id for s in routing.consumers_of(systems.values(), "analytics")] == ["reader"]


def test_what_was_queued_before_a_system_became_a_consumer_is_not_sent(
    gateway: TestClient,
) -> None:
    grant(gateway, who("ana"), "analytics")
    add(gateway, "reader", system("https://reader.example.com/events"))
    assert send(gateway, [page_view("e1")])[0]["status"] == "accepted"
    resp = gateway.put("/v1/systems/reader", headers=auth(), json=_consumer("analytics"))
    assert resp.status_code == 200, resp.text
    assert worker(gateway).run_once() == 0
    with runtime_of(gateway).store.read() as conn:
        assert conn.execute(select(outbox.c.seq)).all() == []


def test_a_system_not_serving_its_topics_purpose_is_no_consumer(gateway: TestClient) -> None:
    """A definition stored before the data map required the purpose (here written straight to
    the table) names the analytics topic but serves personalization only: it reads nothing."""
    add(gateway, "reader", _consumer("analytics"))
    add(gateway, "other", _consumer("personalization"))
    rt = runtime_of(gateway)
    with rt.store.write() as conn:
        row = datamap_sql.get_system(conn, "other")
        assert row is not None
        definition = json.loads(row.definition)
        definition["endpoint"] = _consumer("analytics")["endpoint"]
        datamap_sql.update_system(conn, "other", json.dumps(definition), row.updated_at)
        bump_config_version(conn)
    with rt.store.read() as conn:
        systems = rt.datamap.all(conn)
    assert systems["other"].endpoint.endswith("consentry.consented.analytics")
    assert [s.system_id for s in routing.consumers_of(systems.values(), "analytics")] == ["reader"]
    assert routing.consumers_of(systems.values(), "personalization") == []
