"""Stream mode on a real broker and PostgreSQL: the replica records, in the batch's
transaction, which subject's records went to which consented topic (stream_marks), and an
erasure of that subject waits for them to pass the topic's retention (API.md, Stream mode)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import stream as stream_sql
from consentry.stream.replica import Replica
from tests.conftest import auth
from tests.ingest.test_pipeline import grant, who
from tests.stream.conftest import Running, produce, raw, read, values

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
        marks = {s: stream_sql.marks_of(conn, s) for s in (ana, ben)}
    assert set(marks[ana]) == {ANALYTICS, PERSONALIZATION}
    assert set(marks[ben]) == {ANALYTICS}
    assert all(before <= at <= clock.now() for m in marks.values() for at in m.values())

    resp = gateway.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": "erasure",
            "subject": who(f"{prefix}ana"),
            "jurisdiction": "EU",
            "verification": {"method": "account_login", "level": "high"},
        },
    )
    assert resp.status_code == 202, resp.text
    rid = resp.json()["request_id"]
    rt.runner.run_pending()
    state = gateway.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    hours = stream_settings.kafka_retention_hours
    latest = max(marks[ana].values())
    until = latest + timedelta(hours=hours, minutes=65)
    assert [(t["topic"], t["until"]) for t in state["topics"]] == [
        (ANALYTICS, clock.rfc3339(marks[ana][ANALYTICS] + timedelta(hours=hours, minutes=65))),
        (
            PERSONALIZATION,
            clock.rfc3339(marks[ana][PERSONALIZATION] + timedelta(hours=hours, minutes=65)),
        ),
    ]
    assert until - clock.now() < timedelta(days=8)
