"""Registered consumers of the stream mode's consented topics, on both back-ends (no broker): a
`kind: kafka` system whose endpoint names `consentry.consented.<purpose>` must serve that
purpose, and the outbox never queues deliveries to it (the stream produces its records:
tests/stream/test_consumers.py)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.governance import routing
from consentry.storage import datamap as datamap_sql
from consentry.storage import delivery as delivery_sql
from consentry.storage import stream as stream_sql
from consentry.storage.configuration import bump_config_version
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.dsr.conftest import erase
from tests.http.test_conventions import assert_problem
from tests.ingest.test_pipeline import grant, send, who

ANALYTICS = "consentry.consented.analytics"


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


# What a record of the analytics topic can carry (page_view: url and count, the pseudonymised
# email, the tokenised card; the redacted message is sealed, left off the topics).
EVERY = ["system.operations", "user.contact", "user.financial"]


def _live(client: TestClient, subject_id: str, until: datetime) -> None:
    """A replica's mark: the subject's records are on the analytics topic until `until`."""
    with runtime_of(client).store.write() as conn:
        stream_sql.mark(
            conn, [(subject_id, ANALYTICS)], until - timedelta(days=7), {ANALYTICS: until}
        )


def _read_by_one_consumer(client: TestClient) -> tuple[str, datetime]:
    """A consumer of the analytics topic, and an EU subject whose records are on it for two
    hours more: the subject's id and when its records are gone."""
    add(client, "reader", _consumer("analytics", data_categories=EVERY))
    ana = grant(client, who("ana"), "analytics", jurisdiction="EU")["subject_id"]
    until = clock.now() + timedelta(hours=2)
    _live(client, ana, until)
    return str(ana), until


def test_joining_a_topic_that_holds_records_a_system_may_not_read_is_refused(
    gateway: TestClient,
) -> None:
    ana, until = _read_by_one_consumer(gateway)
    refused = {
        # Outside the EU without a safeguard: the gate refuses the EU subject's data.
        "reader-us": _consumer(
            "analytics", region="US", transfer_mechanism="none", data_categories=EVERY
        ),
        # The records can carry the card's token: it does not declare user.financial.
        "reader-ops": _consumer("analytics"),
    }
    for system_id, body in refused.items():
        problem = assert_problem(
            gateway.put(f"/v1/systems/{system_id}", headers=auth(), json=body),
            409,
            "topic_holds_records",
        )
        assert problem["topic"] == ANALYTICS
        assert problem["until"] == clock.rfc3339(until)
        assert clock.rfc3339(until) in str(problem["detail"])
        # Nothing personal in it.
        assert ana not in json.dumps(problem)
        assert "ana@example.com" not in json.dumps(problem)
        assert gateway.get(f"/v1/systems/{system_id}", headers=auth()).status_code == 404
    # A current consumer's own change is not refused: it could read those records already,
    # and a stricter definition (a DPA that ended, a move out of the EU) must take effect at
    # once for the records after it.
    for body in (
        _consumer("analytics", region="US", transfer_mechanism="none", data_categories=EVERY),
        _consumer("analytics", data_categories=EVERY, dpa_signed=False),
        _consumer("analytics", data_categories=EVERY, name="Renamed"),
    ):
        resp = gateway.put("/v1/systems/reader", headers=auth(), json=body)
        assert resp.status_code == 200, resp.text
    # Any other system is stored as before; so is a consumer of a topic holding nothing.
    add(gateway, "warehouse", system("https://warehouse.example.com/events"))
    add(
        gateway,
        "reader-us-p",
        _consumer("personalization", region="US", transfer_mechanism="none"),
    )
    with runtime_of(gateway).store.read() as conn:
        assert {(r.system_id, r.purpose) for r in delivery_sql.recipient_rows(conn, ana)} == set()


def test_a_topic_whose_records_an_erasure_waits_for_takes_no_new_consumer(
    gateway: TestClient,
) -> None:
    # The erasure's purge notices went to the consumers it had; a system joining while the
    # records are still there would read them unannounced, however well it passes the gates.
    ana, _ = _read_by_one_consumer(gateway)
    rid = erase(gateway, who("ana"), "account_login")
    runtime_of(gateway).runner.run_pending()
    state = gateway.get(f"/v1/requests/{rid}", headers=auth()).json()
    [wait] = state["topics"]
    problem = assert_problem(
        gateway.put(
            "/v1/systems/reader-2",
            headers=auth(),
            json=_consumer("analytics", data_categories=EVERY),
        ),
        409,
        "topic_holds_records",
    )
    assert problem["until"] == wait["until"]
    assert "erasure or withdrawal" in str(problem["detail"])
    assert ana not in json.dumps(problem)


def test_a_system_that_may_read_every_record_joins_and_becomes_their_subjects_recipient(
    gateway: TestClient,
) -> None:
    add(gateway, "reader", _consumer("analytics", data_categories=EVERY))
    ana = grant(gateway, who("ana"), "analytics", jurisdiction="EU")["subject_id"]
    ben = grant(gateway, who("ben"), "analytics", jurisdiction="EU")["subject_id"]
    now = clock.now()
    _live(gateway, ana, now + timedelta(hours=2))
    # Ben's records are gone already.
    _live(gateway, ben, now - timedelta(minutes=1))
    add(gateway, "reader-2", _consumer("analytics", data_categories=EVERY))
    rt = runtime_of(gateway)
    with rt.store.read() as conn:
        assert {(r.system_id, r.purpose) for r in delivery_sql.recipient_rows(conn, ana)} == {
            ("reader-2", "analytics")
        }
        assert delivery_sql.recipient_rows(conn, ben) == []
    # An erasure of ana tells it to purge.
    rid = erase(gateway, who("ana"), "account_login")
    rt.runner.run_pending()
    state = gateway.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert {d["system_id"] for d in state["downstream"]} == {"reader-2"}


def test_a_system_joining_waits_for_the_stream_batch_in_flight_and_reads_its_marks(
    gateway: TestClient,
) -> None:
    """A stream batch has decided the topic's consumers and marked ana's records, not yet
    committed, when a system that may not read them asks to join: the change waits for the
    batch and is refused (on PostgreSQL it would otherwise read no mark and be stored)."""
    add(gateway, "reader", _consumer("analytics", data_categories=EVERY))
    ana = grant(gateway, who("ana"), "analytics", jurisdiction="EU")["subject_id"]
    store = runtime_of(gateway).store
    until = clock.now() + timedelta(hours=2)
    inside, release = threading.Event(), threading.Event()

    def batch() -> None:
        with store.write() as conn:
            stream_sql.hold_consumers(conn, alone=False)
            stream_sql.mark(conn, [(ana, ANALYTICS)], clock.now(), {ANALYTICS: until})
            inside.set()
            release.wait(10)

    answers: list[Any] = []

    def join() -> None:
        body = _consumer("analytics", region="US", transfer_mechanism="none", data_categories=EVERY)
        answers.append(gateway.put("/v1/systems/reader-us", headers=auth(), json=body))

    batching = threading.Thread(target=batch)
    batching.start()
    assert inside.wait(10)
    joining = threading.Thread(target=join)
    joining.start()
    time.sleep(0.5)
    release.set()
    batching.join(10)
    joining.join(10)
    [answer] = answers
    assert_problem(answer, 409, "topic_holds_records")
