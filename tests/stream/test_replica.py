"""`consentry stream` (stream/replica.py) on a real broker and PostgreSQL: raw events in, the
same pipeline as POST /v1/events, each accepted event on the consented topic of every purpose
it is stored for (a delivery body's event, keyed by the subject's pseudonym of that topic),
each refused one's {"event_id", "code"} on the refused topic (API.md, Stream mode)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from fastapi.testclient import TestClient

from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.stream.replica import Replica, StreamFailed
from tests.ingest.test_pipeline import grant, send, who
from tests.stream.conftest import Running, produce, raw, read, values

pytestmark = pytest.mark.kafka


def _settle(replica: Replica, count: int, seconds: float = 60) -> None:
    """Step the replica until it has settled `count` raw records."""
    done = 0
    deadline = time.monotonic() + seconds
    while done < count and time.monotonic() < deadline:
        done += replica.step()
    assert done == count


def test_raw_events_become_consented_and_refused_records(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    grant(gateway, who("ana"), "analytics", "personalization")
    grant(gateway, who("ben"), "analytics")
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()  # joins the group (nothing of this test is there yet)
    p = prefix
    produce(
        kafka_bootstrap,
        [
            raw(f"{p}e1", "ana", offer="spring", email="ana@example.com"),
            raw(f"{p}e2", "ben", offer="spring"),
            raw(f"{p}e3", "cy"),
            b"{not json",
            json.dumps({"event_id": f"{p}e5"}).encode(),
            raw(f"{p}e1", "ana"),
        ],
        key=p.encode(),
    )
    _settle(replica, 6)

    analytics = read(kafka_bootstrap, "consentry.consented.analytics")
    personalization = read(kafka_bootstrap, "consentry.consented.personalization")
    found = values(analytics, p)
    assert [v["event_id"] for v in found] == [f"{p}e1", f"{p}e2"]
    first = found[0]
    assert set(first) == {
        "event_id",
        "event_type",
        "occurred_at",
        "subject_pseudonym",
        "purposes",
        "properties",
    }
    assert first["event_type"] == "page_view"
    assert first["purposes"] == ["analytics"]
    # `offer` is shown to personalization only; the e-mail address is pseudonymised.
    assert set(first["properties"]) == {"url", "email"}
    assert first["properties"]["email"] != "ana@example.com"
    [shown] = values(personalization, p)
    assert shown["event_id"] == f"{p}e1"
    assert shown["purposes"] == ["personalization"]
    assert shown["properties"]["offer"] == "spring"
    # Keyed by the subject's pseudonym of that topic: two topics cannot join what they carry.
    keys = {
        m.value(): m.key()
        for m in analytics + personalization
        if json.loads(m.value() or b"{}").get("event_id") == f"{p}e1"
    }
    assert len(set(keys.values())) == 2
    for value, key in keys.items():
        assert json.loads(value or b"{}")["subject_pseudonym"] == (key or b"").decode()
    assert b"ana" not in b"".join(k or b"" for k in keys.values())

    refused = [m for m in read(kafka_bootstrap, "consentry.refused") if m.key() == p.encode()]
    assert [json.loads(m.value() or b"") for m in refused] == [
        {"event_id": None, "code": "malformed_json"},
        {"event_id": f"{p}e3", "code": "no_consent"},
        {"event_id": f"{p}e5", "code": "invalid_event"},
        {"event_id": f"{p}e1", "code": "duplicate_event"},
    ]
    # Stored as over HTTP: the same event again is a duplicate there too.
    assert send(gateway, [json.loads(raw(f"{p}e1", "ana"))])[0]["code"] == "duplicate_event"


def test_a_replica_needs_brokers(stream_settings: Settings) -> None:
    runtime = Runtime(dataclasses.replace(stream_settings, kafka_brokers=""))
    try:
        with pytest.raises(StreamFailed):
            Replica(runtime)
    finally:
        runtime.close()
