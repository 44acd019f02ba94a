"""Stream mode, on both back-ends: an erasure, and a withdrawal's purge of a purpose, of a
subject whose records went to a consented topic complete only once those records are past
the topic's retention (its retention, the segment's roll and the broker's check), and say
until when meanwhile (API.md, Stream mode). The replica's marks are written here directly;
tests/stream/test_consumers.py has them written by a replica on a real broker."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry import clock
from consentry.dsr import erasure as erasure_module
from consentry.storage import stream as stream_sql
from consentry.web import dashboard
from tests.conftest import auth
from tests.dsr.conftest import email, erase, grant, run, runtime_of, send

ANALYTICS = "consentry.consented.analytics"
PERSONALIZATION = "consentry.consented.personalization"
# CONSENTRY_KAFKA_RETENTION_HOURS (168, shorter than the purposes'), the hour a segment stays
# open, the broker's 5-minute retention check.
GONE_AFTER = timedelta(hours=168, minutes=65)


def _mark(
    client: TestClient, subject_id: str, topic: str, at: datetime, gone_by: datetime | None = None
) -> None:
    """A replica's mark: by default, one that applied the default retention to the topic."""
    with runtime_of(client).store.write() as conn:
        stream_sql.mark(conn, [(subject_id, topic)], at, {topic: gone_by or at + GONE_AFTER})


def _entries(client: TestClient, subject_id: str, action: str) -> list[dict[str, object]]:
    items = client.get(
        f"/v1/audit/entries?subject_id={subject_id}&limit=1000", headers=auth()
    ).json()["items"]
    return [e["details"] for e in items if e["action"] == action]


def test_an_erasure_waits_until_the_subjects_records_are_past_the_topics_retention(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = email("tessa")
    subject_id = grant(ready, subject, "analytics", "personalization")
    send(ready, subject, 2, "tw", topic="t")
    now = clock.now()
    _mark(ready, subject_id, ANALYTICS, now - timedelta(hours=2))
    _mark(ready, subject_id, PERSONALIZATION, now - timedelta(hours=1))
    # Never backwards: a replica committing an older batch later leaves the latest.
    _mark(ready, subject_id, PERSONALIZATION, now - timedelta(hours=3))
    rid = erase(ready, subject, "account_login")
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert state["step"] == "notified"
    until = now - timedelta(hours=1) + GONE_AFTER
    assert state["topics"] == [
        {
            "topic": ANALYTICS,
            "until": clock.rfc3339(now - timedelta(hours=2) + GONE_AFTER),
            "waiting": True,
        },
        {"topic": PERSONALIZATION, "until": clock.rfc3339(until), "waiting": True},
    ]
    # The DPO dashboard's request row says it too.
    [row] = [
        r for r in dashboard.backlog(runtime_of(ready), now, {}).rows if r.request.request_id == rid
    ]
    assert [t["topic"] for t in row.topics] == [ANALYTICS, PERSONALIZATION]

    real_now = clock.now
    # A second before the later one is gone: still waiting.
    monkeypatch.setattr(clock, "now", lambda: until - timedelta(seconds=1))
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert [t["waiting"] for t in state["topics"]] == [False, True]
    # An operator's acknowledgement does not end it either (no system is owed one).
    monkeypatch.setattr(clock, "now", lambda: until + timedelta(seconds=1))
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "completed"
    assert [t["waiting"] for t in state["topics"]] == [False, False]
    with runtime_of(ready).store.read() as conn:
        assert stream_sql.gone_by_of(conn, subject_id) == {}
    monkeypatch.setattr(clock, "now", real_now)


def test_an_erasure_whose_records_are_already_gone_completes_at_once(ready: TestClient) -> None:
    subject = email("ugo")
    subject_id = grant(ready, subject, "analytics")
    _mark(ready, subject_id, ANALYTICS, clock.now() - GONE_AFTER - timedelta(minutes=1))
    rid = erase(ready, subject, "account_login")
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "completed"
    assert "topics" not in state
    with runtime_of(ready).store.read() as conn:
        assert stream_sql.gone_by_of(conn, subject_id) == {}


def test_a_withdrawal_purge_waits_for_its_purposes_topic_only(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = email("vera")
    subject_id = grant(ready, subject, "analytics", "personalization")
    send(ready, subject, 1, "tw2", topic="t")
    now = clock.now()
    _mark(ready, subject_id, ANALYTICS, now - timedelta(hours=1))
    _mark(ready, subject_id, PERSONALIZATION, now - timedelta(hours=1))
    resp = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["analytics"]},
    )
    assert resp.status_code == 200, resp.text
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + erasure_module.SETTLE)
    assert run(ready)["withdrawals"]["withdrawals"] == 1
    until = now - timedelta(hours=1) + GONE_AFTER
    waiting = _entries(ready, subject_id, "events:topic_purge:waiting")
    assert [(d["purpose"], d["topic"], d["until"]) for d in waiting] == [
        ("analytics", ANALYTICS, clock.rfc3339(until))
    ]
    assert _entries(ready, subject_id, "events:topic_purge:passed") == []
    metrics = ready.get("/metrics", headers=auth())
    assert "consentry_topic_purges_waiting 1.0" in metrics.text
    monkeypatch.setattr(clock, "now", lambda: until - timedelta(seconds=1))
    assert run(ready)["topic_waits_passed"] == 0
    monkeypatch.setattr(clock, "now", lambda: until + timedelta(seconds=1))
    assert run(ready)["topic_waits_passed"] == 1
    passed = _entries(ready, subject_id, "events:topic_purge:passed")
    assert [(d["topic"], d["until"]) for d in passed] == [(ANALYTICS, clock.rfc3339(until))]
    assert run(ready)["topic_waits_passed"] == 0


def test_a_withdrawal_waits_for_a_record_marked_after_it_too(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record marked after the withdrawal (decided before it and committed just after, or
    written under a later grant) is on the topic as well: the purge's wait is never cut at the
    withdrawal's time."""
    subject = email("wim")
    subject_id = grant(ready, subject, "analytics")
    resp = ready.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": subject, "purposes": ["analytics"]},
    )
    assert resp.status_code == 200, resp.text
    withdrawn = clock.now()
    _mark(ready, subject_id, ANALYTICS, withdrawn + timedelta(hours=5))
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + erasure_module.SETTLE)
    run(ready)
    [waiting] = _entries(ready, subject_id, "events:topic_purge:waiting")
    until = withdrawn + timedelta(hours=5) + GONE_AFTER
    assert waiting["until"] == clock.rfc3339(until)


def test_a_purge_waits_until_the_time_its_replica_stored_not_one_computed_here(
    ready: TestClient,
) -> None:
    """The replica that produced the records applied a longer retention to the topic than
    this process's settings say (400 hours; the gateway has the default 168): the erasure
    waits for the time stored with the mark. Of two marks, the longer stays."""
    subject = email("yann")
    subject_id = grant(ready, subject, "analytics")
    at = clock.now() - timedelta(hours=1)
    longer = at + timedelta(hours=400)
    _mark(ready, subject_id, ANALYTICS, at, longer)
    # Another replica, with the shorter retention, marks a later record: the time stays.
    _mark(ready, subject_id, ANALYTICS, at + timedelta(minutes=1))
    rid = erase(ready, subject, "account_login")
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    assert state["topics"] == [
        {"topic": ANALYTICS, "until": clock.rfc3339(longer), "waiting": True}
    ]


def test_a_longer_retention_moves_the_marks_of_records_still_on_the_topic(
    ready: TestClient,
) -> None:
    """A replica made a topic's retention longer: the records already there stay longer too
    (Kafka applies retention.ms to every segment), so their marks move; gone ones do not."""
    now = clock.now()
    live = grant(ready, email("zoe"), "analytics")
    gone = grant(ready, email("zack"), "analytics")
    _mark(ready, live, ANALYTICS, now - timedelta(hours=2))
    _mark(ready, gone, ANALYTICS, now - GONE_AFTER - timedelta(hours=1))
    with runtime_of(ready).store.write() as conn:
        moved = stream_sql.extend(conn, ANALYTICS, timedelta(hours=400), now)
        assert moved == 1
        assert stream_sql.gone_by_of(conn, live) == {
            ANALYTICS: now - timedelta(hours=2) + timedelta(hours=400)
        }
        assert stream_sql.gone_by_of(conn, gone) == {ANALYTICS: now - timedelta(hours=1)}
        # A shorter one moves nothing.
        assert stream_sql.extend(conn, ANALYTICS, timedelta(hours=1), now) == 0


def test_a_longer_retention_moves_the_wait_of_a_purge_already_waiting(ready: TestClient) -> None:
    """An erasure waits for the subject's records on a topic; a replica then makes the topic's
    retention longer: the records stay longer, and so does the erasure's wait."""
    subject = email("yves")
    subject_id = grant(ready, subject, "analytics")
    at = clock.now() - timedelta(hours=2)
    _mark(ready, subject_id, ANALYTICS, at)
    rid = erase(ready, subject, "account_login")
    run(ready)
    with runtime_of(ready).store.write() as conn:
        assert stream_sql.extend(conn, ANALYTICS, timedelta(hours=400), clock.now()) == 1
    run(ready)
    state = ready.get(f"/v1/requests/{rid}", headers=auth()).json()
    assert state["status"] == "awaiting_downstream"
    later = clock.rfc3339(at + timedelta(hours=400))
    assert state["topics"] == [{"topic": ANALYTICS, "until": later, "waiting": True}]


def test_a_wait_is_passed_once_by_two_processes_passing_it_at_once(
    ready: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runners pass the same wait at the same time: the first holds its transaction open
    after passing it (in its audit record); the second, started then, finds nothing left to
    pass, so the purge is said passed once."""
    subject_id = grant(ready, email("xia"), "analytics")
    rt = runtime_of(ready)
    with rt.store.write() as conn:
        stream_sql.add_waits(
            conn,
            [
                {
                    "entry_id": 1,
                    "subject_id": subject_id,
                    "topic": ANALYTICS,
                    "until": clock.now() - timedelta(seconds=1),
                }
            ],
        )
    record = erasure_module.audit.record
    inside, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        out = record(*args, **kwargs)
        if threading.current_thread().name == "first":
            inside.set()
            release.wait(10)
        return out

    monkeypatch.setattr(erasure_module.audit, "record", held)
    passed: dict[str, int] = {}

    def pass_waits() -> None:
        passed[threading.current_thread().name] = rt.erasure.topic_waits_passed(actor="runner")

    first = threading.Thread(target=pass_waits, name="first")
    second = threading.Thread(target=pass_waits, name="second")
    first.start()
    assert inside.wait(10)
    second.start()
    # The second is now waiting for the first's lock (its row's, on PostgreSQL).
    time.sleep(0.5)
    release.set()
    first.join(10)
    second.join(10)
    assert passed == {"first": 1, "second": 0}
    monkeypatch.setattr(erasure_module.audit, "record", record)
    assert len(_entries(ready, subject_id, "events:topic_purge:passed")) == 1
