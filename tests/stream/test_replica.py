"""`consentry stream` (stream/replica.py) on a real broker and PostgreSQL: raw events in, the
same pipeline as POST /v1/events, each accepted event on the consented topic of every purpose
it is stored for (a delivery body's event, keyed by the subject's pseudonym of that topic),
each refused one's {"event_id", "code"} on the refused topic (API.md, Stream mode)."""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from fastapi.testclient import TestClient

from consentry.errors import BatchTooLarge, KeyUnwrapFailed
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.stream.replica import (
    KAFKA_DEADLINE_SECONDS,
    TRANSACTION_TIMEOUT_MS,
    Replica,
    StreamFailed,
    transactional_config,
)
from tests.conftest import auth
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
            raw(f"{p}e1", "ana", offer="spring", email="ana@example.com", message="Ana, Leeds"),
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
    # `offer` is shown to personalization only; the e-mail address is pseudonymised; the
    # message (personal, sealed in the store) is on no topic in clear.
    assert set(first["properties"]) == {"url", "email"}
    assert b"Leeds" not in b"".join(m.value() or b"" for m in analytics + personalization)
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

    refused = read(kafka_bootstrap, "consentry.refused")
    # Keyed by the event id, never the raw record's key (which may be personal data).
    assert p.encode() not in {m.key() for m in refused}
    mine = [m for m in refused if (m.key() or b"").startswith(p.encode())]
    assert all(m.key() == json.loads(m.value() or b"")["event_id"].encode() for m in mine)
    assert any(
        m.key() is None and json.loads(m.value() or b"")["code"] == "malformed_json"
        for m in refused
    )
    assert [json.loads(m.value() or b"") for m in mine] == [
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


def _ingest_failing(
    monkeypatch: pytest.MonkeyPatch, runtime: Runtime, failures: dict[int, Exception]
) -> list[int]:
    """The pipeline's ingest raising `failures[n]` at its n-th call (from 0); returns the
    calls' event counts."""
    pipeline = runtime.pipeline
    real = pipeline.ingest
    calls: list[int] = []

    def ingest(body: bytes, **kwargs: Any) -> Any:
        calls.append(body.count(b'"event_id"'))
        failure = failures.get(len(calls) - 1)
        if failure is not None:
            raise failure
        return real(body, **kwargs)

    monkeypatch.setattr(pipeline, "ingest", ingest)
    return calls


def _steps(replica: Replica, count: int, seconds: float = 60) -> int:
    """Step until `count` records are settled; returns how many steps failed."""
    done = failed = 0
    deadline = time.monotonic() + seconds
    while done < count and time.monotonic() < deadline:
        try:
            done += replica.step()
        except KeyUnwrapFailed:
            failed += 1
    assert done == count
    return failed


def test_a_failure_of_the_system_is_retried_never_refused(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant(gateway, who("ana"), "analytics")
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    calls = _ingest_failing(monkeypatch, replicas[0].runtime, {0: KeyUnwrapFailed("no")})
    produce(kafka_bootstrap, [raw(f"{prefix}e1", "ana")], key=prefix.encode())
    assert _steps(replica, 1) == 1
    assert len(calls) == 2
    assert values(read(kafka_bootstrap, "consentry.refused"), prefix) == []
    found = values(read(kafka_bootstrap, "consentry.consented.analytics"), prefix)
    assert [v["event_id"] for v in found] == [f"{prefix}e1"]


def test_records_settled_one_at_a_time_are_not_read_again(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant(gateway, who("ana"), "analytics")
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    # The batch refused whole (decided again one record at a time); the second record's
    # own try fails: the first, settled already, is not read again.
    calls = _ingest_failing(
        monkeypatch,
        replicas[0].runtime,
        {0: BatchTooLarge("too large"), 2: KeyUnwrapFailed("no")},
    )
    p = prefix
    produce(kafka_bootstrap, [raw(f"{p}e{i}", "ana") for i in range(3)], key=p.encode())
    # The failed step settled the first record; the next reads the other two alone.
    assert _steps(replica, 2) == 1
    assert calls == [3, 1, 1, 2]
    assert values(read(kafka_bootstrap, "consentry.refused"), p) == []
    found = values(read(kafka_bootstrap, "consentry.consented.analytics"), p)
    assert sorted(v["event_id"] for v in found) == [f"{p}e0", f"{p}e1", f"{p}e2"]


class _Producer:
    """A producer whose commit keeps failing with a retriable error, after `slow` seconds."""

    def __init__(self, slow: float) -> None:
        self.slow = slow
        self.timeouts: list[float] = []
        self.aborted: list[float] = []

    def begin_transaction(self) -> None:
        pass

    def produce(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.timeouts.append(timeout)

    def commit_transaction(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        time.sleep(min(self.slow, timeout))
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True))

    def abort_transaction(self, timeout: float) -> None:
        self.aborted.append(timeout)


class _Message:
    def topic(self) -> str:
        return "consentry.raw"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def test_the_kafka_work_of_a_batch_has_one_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    replica = object.__new__(Replica)
    producer = _Producer(slow=2.0)
    replica.producer = producer  # type: ignore[assignment]
    replica.consumer = SimpleNamespace(consumer_group_metadata=lambda: None)  # type: ignore[assignment]
    started = time.monotonic()
    with pytest.raises(KafkaException):
        replica.commit([], [_Message()])  # type: ignore[list-item]
    took = time.monotonic() - started
    assert took <= KAFKA_DEADLINE_SECONDS + 0.5
    assert max(producer.timeouts) <= KAFKA_DEADLINE_SECONDS
    assert producer.aborted
    assert producer.aborted[0] * 1000 + took * 1000 < TRANSACTION_TIMEOUT_MS


def test_a_consented_record_carries_no_personal_value_in_clear(
    gateway: TestClient,
    stream_settings: Settings,
    replicas: list[Running],
    kafka_bootstrap: str,
    prefix: str,
) -> None:
    schema = {
        "purposes": ["analytics"],
        "fields": {
            "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
            "contact": {"type": "string", "category": "user.contact.email", "treatment": "keep"},
            "city": {
                "type": "string",
                "category": "user.contact.address.city",
                "treatment": "keep",
            },
            "email": {
                "type": "string",
                "category": "user.contact.email",
                "treatment": "pseudonymise",
            },
        },
    }
    assert gateway.put("/v1/schemas/signup", headers=auth(), json=schema).status_code == 201
    grant(gateway, who("ana"), "analytics")
    replicas.append(Running(stream_settings))
    replica = replicas[0].replica
    replica.step()
    event = json.loads(
        raw(f"{prefix}e1", "ana", contact="ana@example.com", city="Leeds", email="a@example.com")
    )
    produce(kafka_bootstrap, [json.dumps(event | {"event_type": "signup"}).encode()])
    _settle(replica, 1)
    analytics = read(kafka_bootstrap, "consentry.consented.analytics")
    [found] = values(analytics, prefix)
    # The kept personal fields (sealed in the store) are left out; the pseudonym stays.
    assert set(found["properties"]) == {"url", "email"}
    assert found["properties"]["email"] != "a@example.com"
    assert b"Leeds" not in b"".join(m.value() or b"" for m in analytics)


def test_the_transactional_producer_retries_soon() -> None:
    """A batch's offsets meet CONCURRENT_TRANSACTIONS while the broker writes the markers of the
    batch before (milliseconds): librdkafka's first wait of 100 ms was most of a batch."""
    config = transactional_config({"bootstrap.servers": "127.0.0.1:9092"}, "consentry-stream-a")
    assert config["transactional.id"] == "consentry-stream-a"
    assert config["retry.backoff.ms"] <= 20
    assert config["transaction.timeout.ms"] == TRANSACTION_TIMEOUT_MS
