"""The compacted topic `consentry.consents` (API.md, Stream mode): every ledger change is
published (key: subject id; value: the purposes' states and the version; an erasure, the key's
tombstone); after compaction the topic still folds to the ledger's state; a replica folds it
into its consent cache."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from fastapi.testclient import TestClient

from consentry.consent import feed, ledger
from consentry.consent.models import SubjectConsent
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.stream.consents import ConsentFolder, KafkaConsentFeed
from tests.conftest import auth
from tests.delivery.test_delivery import runtime_of
from tests.ingest.test_pipeline import grant, who

pytestmark = pytest.mark.kafka

TOPIC = "consentry.consents"


def _compaction(bootstrap: str, *, soon: bool) -> None:
    """soon: segments roll and are cleaned within about a second (the broker's cleaner wakes
    every half second, scripts/kafka); otherwise not within the test."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    quick = {
        "segment.ms": "200" if soon else "3600000",
        "min.cleanable.dirty.ratio": "0.001",
        "delete.retention.ms": "200",
        "min.compaction.lag.ms": "0",
    }
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        TOPIC,
        incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in quick.items()
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _records(bootstrap: str, keys: set[str]) -> list[tuple[str, Any]]:
    """(key, value) of the topic's records of `keys`, in order (value None: a tombstone)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tests-consents",
            "enable.auto.commit": False,
        }
    )
    tp = TopicPartition(TOPIC, 0)
    _low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    found = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            key = (message.key() or b"").decode()
            if key in keys:
                value = message.value()
                found.append((key, None if value is None else json.loads(value)))
            if int(message.offset() or 0) >= high - 1:
                break
    finally:
        consumer.close()
    return found


def _fold(found: list[tuple[str, Any]]) -> dict[str, Any]:
    folded: dict[str, Any] = {}
    for key, value in found:
        if value is None:
            folded.pop(key, None)
        else:
            folded[key] = value
    return folded


def _ledger(rt: Runtime, subject_ids: list[str]) -> dict[str, Any]:
    """What the ledger says of each subject, as the topic's values say it (erased: absent)."""
    out = {}
    with rt.store.read() as conn:
        for subject_id in subject_ids:
            value = feed.value(ledger.load(conn, subject_id))
            if value is not None:
                out[subject_id] = value
    return out


def test_the_compacted_topic_folds_to_the_ledger(gateway: TestClient, kafka_bootstrap: str) -> None:
    rt = runtime_of(gateway)
    _compaction(kafka_bootstrap, soon=False)
    names = [f"cleo{n}" for n in range(4)]
    ids = [grant(gateway, who(name), "analytics")["subject_id"] for name in names]
    for n in range(15):
        for name in names:
            purpose = ("analytics", "personalization", "marketing")[n % 3]
            if n % 2:
                resp = gateway.post(
                    "/v1/consents/withdraw",
                    headers=auth(),
                    json={"subject": who(name), "purposes": [purpose], "source": "web"},
                )
                assert resp.status_code == 200, resp.text
            else:
                grant(gateway, who(name), purpose)
    erased = gateway.post(
        "/v1/requests",
        headers=auth(),
        json={
            "type": "erasure",
            "subject": who(names[0]),
            "jurisdiction": "EU",
            "verification": {"method": "id_document", "level": "high"},
        },
    )
    assert erased.status_code == 202, erased.text
    assert rt.consent_feed is not None
    assert rt.consent_feed.flush() == 0
    published = _records(kafka_bootstrap, set(ids))
    # Every change is there, in ledger order per subject; the erasure is a tombstone.
    assert len(published) >= 4 * 16
    assert (ids[0], None) in published
    for subject_id in ids:
        versions = [v["version"] for k, v in published if k == subject_id and v is not None]
        assert versions == sorted(versions), subject_id
    expected = _ledger(rt, ids)
    assert ids[0] not in expected
    assert _fold(published) == expected

    # Compaction: the topic keeps fewer records, and still folds to the same state.
    _compaction(kafka_bootstrap, soon=True)
    roll = Producer({"bootstrap.servers": kafka_bootstrap})
    deadline = time.monotonic() + 90
    compacted = published
    while len(compacted) >= len(published) and time.monotonic() < deadline:
        # A record after the segment's time rolls it, so the old one can be cleaned.
        roll.produce(TOPIC, key=b"roll", value=b"{}")
        roll.flush(10)
        time.sleep(1.0)
        compacted = _records(kafka_bootstrap, set(ids))
    assert len(compacted) < len(published)
    assert _fold(compacted) == expected


def test_a_replica_folds_changes_into_its_cache(
    gateway: TestClient, stream_settings: Settings, kafka_bootstrap: str
) -> None:
    subject_id = grant(gateway, who("dora"), "analytics")["subject_id"]
    replica = Runtime(stream_settings)
    try:
        folder = ConsentFolder({"bootstrap.servers": kafka_bootstrap}, replica.consent_cache)
        before = replica.consent_cache.get(subject_id)
        assert before is not None
        resp = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("dora"), "purposes": ["analytics"], "source": "web"},
        )
        assert resp.status_code == 200, resp.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            folder.fold()
            now = replica.consent_cache.get(subject_id)
            if now is not None and now.version > before.version:
                break
            time.sleep(0.05)
        now = replica.consent_cache.get(subject_id)
        assert now is not None
        assert now.version > before.version
        assert now.purposes["analytics"].state.value == "withdrawn"
        folder.close()
    finally:
        replica.close()


class _Failing:
    """A producer that refuses every record with a Kafka error (e.g. a record too large)."""

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))

    def poll(self, timeout: float) -> int:
        raise KafkaException(KafkaError(KafkaError._FATAL, "fatal"))

    def flush(self, timeout: float) -> int:
        return 0


def test_a_publish_that_fails_never_raises_and_logs_no_value(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    published = KafkaConsentFeed({"bootstrap.servers": kafka_bootstrap})
    published._producer = _Failing()  # type: ignore[assignment]
    state = SubjectConsent("subject-1", 3)
    with caplog.at_level(logging.WARNING, logger="consentry.stream.consents"):
        published.publish([state])
    assert "MSG_SIZE_TOO_LARGE" in caplog.text
    assert "version" not in caplog.text
