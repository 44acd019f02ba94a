"""Stream mode on a real broker and PostgreSQL (API.md, Stream mode): the replica records, in
the batch's transaction, which subject's records went to which consented topic (stream_marks),
and an erasure of that subject waits for them to pass the topic's retention; only registered
`kind: kafka` consumers read a topic, a subject's records go there only when every consumer
passes the delivery gates for that subject, and each consumer becomes a recipient of the
subject (rights notices). tests/stream/conftest.py's gateway registers a consumer of the
analytics and personalization topics."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import delivery as delivery_sql
from consentry.storage import stream as stream_sql
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import events
from consentry.stream import replica as replica_module
from consentry.stream.replica import Replica
from tests.conftest import auth
from tests.delivery.test_delivery import add
from tests.dsr.conftest import erase
from tests.ingest.test_pipeline import grant, who
from tests.stream.conftest import Running, consumer, marks_of, produce, raw, read, values

pytestmark = pytest.mark.kafka

ANALYTICS = "consentry.consented.analytics"
PERSONALIZATION = "consentry.consented.personalization"


def _settle(replica: Replica, count: int, seconds: float = 60) -> None:
    done = 0
    deadline = time.monotonic() + seconds
    while done < count and time.monotonic() < deadline:
        done += replica.step()
    assert done == count


def _runtime(client: TestClient) -> Runtime:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(rt, Runtime)
    return rt


def test_the_replica_marks_each_subjects_topics_and_an_erasure_waits_for_them(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    ana = grant(gateway, who(f"{prefix}ana"), "analytics", "personalization")["subject_id"]
    ben = grant(gateway, who(f"{prefix}ben"), "analytics")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    before = clock.now()
    p = prefix
    produce(
        kafka_bootstrap,
        [
            raw(f"{p}e1", f"{p}ana", offer="spring"),
            raw(f"{p}e2", f"{p}ana"),
            raw(f"{p}e3", f"{p}ben"),
        ],
        key=p.encode(),
    )
    _settle(replica, 3)
    assert len(values(read(kafka_bootstrap, ANALYTICS), p)) == 3
    rt = _runtime(gateway)
    with rt.store.read() as conn:
        marks = {s: marks_of(conn, s) for s in (ana, ben)}
    assert set(marks[ana]) == {ANALYTICS, PERSONALIZATION}
    assert set(marks[ben]) == {ANALYTICS}
    assert all(before <= at <= clock.now() for m in marks.values() for at in m.values())

    rid = erase(gateway, who(f"{prefix}ana"), "account_login")
    rt.runner.run_pending()
    state = gateway.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    # The retention the replica applied, the segment's hour, and the margin: the producer's
    # deadline (5 s) and the broker's retention check (5 minutes).
    gone = timedelta(hours=stream_settings.kafka_retention_hours, minutes=65, seconds=5)
    latest = max(marks[ana].values())
    until = latest + gone
    assert [(t["topic"], t["until"]) for t in state["topics"]] == [
        (ANALYTICS, clock.rfc3339(marks[ana][ANALYTICS] + gone)),
        (PERSONALIZATION, clock.rfc3339(marks[ana][PERSONALIZATION] + gone)),
    ]
    assert until - clock.now() < timedelta(days=8)


def test_nothing_goes_to_a_topic_nobody_consumes(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    gone = gateway.delete("/v1/systems/reader-personalization", headers=auth())
    assert gone.status_code in (200, 204), gone.text
    ana = grant(gateway, who(f"{prefix}ana"), "analytics", "personalization")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    produce(kafka_bootstrap, [raw(f"{prefix}e1", f"{prefix}ana", offer="spring")])
    _settle(replica, 1)
    assert [v["event_id"] for v in values(read(kafka_bootstrap, ANALYTICS), prefix)] == [
        f"{prefix}e1"
    ]
    assert values(read(kafka_bootstrap, PERSONALIZATION), prefix) == []
    # Stored as before, for both purposes; counted as kept off the topic.
    assert replica.withheld == 1
    rt = _runtime(gateway)
    with rt.store.read() as conn:
        assert set(marks_of(conn, ana)) == {ANALYTICS}
        assert {(r.system_id, r.purpose) for r in delivery_sql.recipient_rows(conn, ana)} == {
            ("reader-analytics", "analytics")
        }
    with rt.store.read() as conn:
        [purposes] = conn.execute(
            select(events.c.purposes).where(events.c.event_id == f"{prefix}e1")
        ).scalars()
    assert sorted(json.loads(purposes)) == ["analytics", "personalization"]


def test_a_consumer_a_gate_refuses_keeps_that_subjects_records_off_the_topic(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    """Exporting from the US, a US consumer without a safeguard may not receive an EU
    subject's data (transfer_blocked), a US-CA subject's it may: the topic, shared by every
    consumer, carries the second only."""
    add(
        gateway,
        "reader-us",
        consumer("analytics", kafka_bootstrap, region="US", transfer_mechanism="none"),
    )
    grant(gateway, who(f"{prefix}eu"), "analytics", "personalization", jurisdiction="EU")
    grant(gateway, who(f"{prefix}ca"), "analytics", jurisdiction="US-CA")
    replicas.append(Running(dataclasses.replace(stream_settings, exporter="US")))
    replica = replicas[0].replica
    replica.step()
    produce(
        kafka_bootstrap,
        [raw(f"{prefix}e1", f"{prefix}eu"), raw(f"{prefix}e2", f"{prefix}ca")],
        key=prefix.encode(),
    )
    _settle(replica, 2)
    found = values(read(kafka_bootstrap, ANALYTICS), prefix)
    assert [v["event_id"] for v in found] == [f"{prefix}e2"]
    # The EU subject's personalization record goes: its one consumer is in the EU.
    assert [v["event_id"] for v in values(read(kafka_bootstrap, PERSONALIZATION), prefix)] == [
        f"{prefix}e1"
    ]
    assert replica.withheld == 1
    refused = gateway.get("/v1/systems/reader-us", headers=auth()).json()["delivery"]["refused"]
    assert refused == {"transfer_blocked": 1}


def test_a_consumer_gets_the_rights_notices_of_a_subject_it_could_read(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    ana = grant(gateway, who(f"{prefix}ana"), "analytics", "personalization")["subject_id"]
    ben = grant(gateway, who(f"{prefix}ben"), "analytics")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    produce(
        kafka_bootstrap,
        [raw(f"{prefix}e1", f"{prefix}ana"), raw(f"{prefix}e2", f"{prefix}ben")],
        key=prefix.encode(),
    )
    _settle(replica, 2)
    rt = _runtime(gateway)
    with rt.store.read() as conn:
        rows = delivery_sql.recipient_rows(conn, ana)
    assert {(r.system_id, r.purpose) for r in rows} == {
        ("reader-analytics", "analytics"),
        ("reader-personalization", "personalization"),
    }
    assert all(r.first_at is not None and r.last_at is not None for r in rows)

    # A withdrawal: `consent_withdrawn` to the consumer of that purpose's topic.
    resp = gateway.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who(f"{prefix}ben"), "purposes": ["analytics"]},
    )
    assert resp.status_code == 200, resp.text
    with rt.store.read() as conn:
        withdrawn = delivery_sql.notices_of_type(conn, ben, "consent_withdrawn")
    assert [r.system_id for r in withdrawn] == ["reader-analytics"]

    # An erasure: a `purge_request` to each consumer, awaited like any recipient's.
    rid = erase(gateway, who(f"{prefix}ana"), "account_login")
    rt.runner.run_pending()
    state = gateway.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert {d["system_id"] for d in state["downstream"]} == {
        "reader-analytics",
        "reader-personalization",
    }
    assert {n["type"] for n in state["notices"]} == {"purge_request"}


def test_a_record_carries_only_the_categories_every_consumer_declares(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    """The outbox sends a system only the fields of a category it declares; a topic's record
    reaches every consumer of it, so it carries the categories all of them declare."""
    add(
        gateway,
        "reader-analytics-ops",
        consumer("analytics", kafka_bootstrap, data_categories=["system.operations"]),
    )
    grant(gateway, who(f"{prefix}ana"), "analytics", "personalization")
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    produce(
        kafka_bootstrap,
        [raw(f"{prefix}e1", f"{prefix}ana", offer="spring", email=f"{prefix}ana@example.com")],
    )
    _settle(replica, 1)
    [analytics] = values(read(kafka_bootstrap, ANALYTICS), prefix)
    assert set(analytics["properties"]) == {"url"}
    [personalization] = values(read(kafka_bootstrap, PERSONALIZATION), prefix)
    assert set(personalization["properties"]) == {"url", "email", "offer"}


def test_a_batch_whose_store_is_retried_after_its_kafka_commit_keeps_its_marks_and_recipients(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database transaction of a batch fails once after its Kafka transaction committed
    (a conflict the pipeline retries): the retried transaction, which produces nothing again,
    still stores the subject's mark and its consumers as recipients."""
    ana = grant(gateway, who(f"{prefix}ana"), "analytics")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    commit = replica_module._Transaction.commit
    failed: list[int] = []

    def commit_then_conflict(self: replica_module._Transaction, out: list[Any]) -> None:
        commit(self, out)
        if not failed:
            failed.append(1)
            raise ConstraintViolation("UniqueViolation")

    monkeypatch.setattr(replica_module._Transaction, "commit", commit_then_conflict)
    produce(kafka_bootstrap, [raw(f"{prefix}e1", f"{prefix}ana")])
    _settle(replica, 1)
    assert failed == [1]
    assert [v["event_id"] for v in values(read(kafka_bootstrap, ANALYTICS), prefix)] == [
        f"{prefix}e1"
    ]
    rt = _runtime(gateway)
    with rt.store.read() as conn:
        stored = conn.execute(select(events.c.event_id).where(events.c.event_id == f"{prefix}e1"))
        assert stored.scalars().all() == [f"{prefix}e1"]
        assert set(marks_of(conn, ana)) == {ANALYTICS}
        assert {(r.system_id, r.purpose) for r in delivery_sql.recipient_rows(conn, ana)} == {
            ("reader-analytics", "analytics")
        }


def _retention_ms(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    return int(future.result(30)["retention.ms"].value)


def test_a_shorter_retention_reaches_the_topic_and_earlier_marks_keep_their_time(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    """A running replica applies a topic's configuration again when the configuration
    version moves: the purpose's retention made a day, the topic's retention.ms is a day from
    the next batch on. A record produced before keeps the time stored with its mark (it was
    produced under the longer retention); a later one's is a day and the margin."""
    ana = grant(gateway, who(f"{prefix}ana"), "analytics")["subject_id"]
    ben = grant(gateway, who(f"{prefix}ben"), "analytics")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    produce(kafka_bootstrap, [raw(f"{prefix}e1", f"{prefix}ana")])
    _settle(replica, 1)
    week = stream_settings.kafka_retention_hours * 3_600_000
    assert _retention_ms(kafka_bootstrap, ANALYTICS) == week
    rt = _runtime(gateway)
    with rt.store.read() as conn:
        [(ana_at, ana_gone)] = [
            (marks_of(conn, ana)[ANALYTICS], stream_sql.gone_by_of(conn, ana)[ANALYTICS])
        ]
    assert ana_gone == ana_at + timedelta(milliseconds=week, minutes=65, seconds=5)

    purpose = {"name": "Analytics", "legal_basis": "consent", "retention_days": 1}
    resp = gateway.put("/v1/purposes/analytics", headers=auth(), json=purpose)
    assert resp.status_code in (200, 201), resp.text
    try:
        produce(
            kafka_bootstrap,
            [raw(f"{prefix}e2", f"{prefix}ana"), raw(f"{prefix}e3", f"{prefix}ben")],
            key=prefix.encode(),
        )
        _settle(replica, 2)
        assert _retention_ms(kafka_bootstrap, ANALYTICS) == 86_400_000
        with rt.store.read() as conn:
            assert stream_sql.gone_by_of(conn, ana) == {ANALYTICS: ana_gone}
            ben_at = marks_of(conn, ben)[ANALYTICS]
            assert stream_sql.gone_by_of(conn, ben) == {
                ANALYTICS: ben_at + timedelta(days=1, hours=1, minutes=5, seconds=5)
            }
    finally:
        # The broker outlives the test: the topic gets its usual retention back.
        _set_retention(kafka_bootstrap, ANALYTICS, week)


def test_marks_move_to_a_longer_retention_even_when_the_first_transaction_rolls_back(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    """The broker keeps a retention once it is set, whether the batch that set it commits or
    not: the marks it should have moved are moved by the next transaction that commits."""
    ana = grant(gateway, who(f"{prefix}ana"), "analytics")["subject_id"]
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    week = stream_settings.kafka_retention_hours * 3_600_000
    rt = _runtime(gateway)
    at = clock.now()
    short = at + timedelta(days=1)
    with rt.store.write() as conn:
        stream_sql.mark(conn, [(ana, ANALYTICS)], at, {ANALYTICS: short})
    # The topic was kept a day (another replica's setting); this one applies its week again.
    _set_retention(kafka_bootstrap, ANALYTICS, 86_400_000)
    replica.topics.forget(ANALYTICS)
    out: Any = [dataclasses.make_dataclass("Out", ["topic"])(ANALYTICS)]

    class Failed(Exception):
        pass

    def rolled_back() -> None:
        with rt.store.write() as conn:
            replica.ready(conn, out, clock.now())
            raise Failed

    with pytest.raises(Failed):
        rolled_back()
    assert _retention_ms(kafka_bootstrap, ANALYTICS) == week
    with rt.store.read() as conn:
        assert stream_sql.gone_by_of(conn, ana) == {ANALYTICS: short}
    # The next batch, with no record for that topic, still moves them, and commits.
    with rt.store.write() as conn:
        replica.ready(conn, [], clock.now())
    with rt.store.read() as conn:
        assert stream_sql.gone_by_of(conn, ana) == {
            ANALYTICS: at + timedelta(milliseconds=week, minutes=65, seconds=5)
        }


def _set_retention(bootstrap: str, topic: str, ms: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("retention.ms", str(ms), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
