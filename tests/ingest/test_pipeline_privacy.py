"""The pipeline's privacy promises: special categories, nothing personal in clear on disk,
and exact opt-outs under concurrency."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock, native
from consentry.app import create_app
from consentry.consent import notices
from consentry.consent.service import ConsentWrite
from consentry.ingest.treatments import Pseudonymise
from consentry.keys.envelope import Sealer
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.schema import events
from consentry.subjects.models import IdentityType, SubjectRef
from consentry.subjects.normalise import normalise
from tests.conftest import auth
from tests.ingest.test_pipeline import CONSENT_PURPOSES, SCHEMA, event, grant, send, who

HEALTH_SCHEMA: dict[str, Any] = {
    "purposes": ["analytics", "care"],
    "fields": {
        "url": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "condition": {"type": "string", "category": "user.health_and_medical", "treatment": "keep"},
    },
}


def test_special_categories_need_a_qualifying_purpose(ready: TestClient) -> None:
    """A special-category field is kept only for purposes with a special_category_condition,
    and for condition `a` only when the subject's grant was explicit."""
    care = {
        "name": "Care",
        "legal_basis": "consent",
        "retention_days": 30,
        "special_category_condition": "a",
    }
    assert ready.put("/v1/purposes/care", headers=auth(), json=care).status_code == 201
    ready.put(
        "/v1/notices/care",
        headers=auth(),
        json={"version": "1", "text": "Care.", "purposes": ["analytics", "care"]},
    )
    assert ready.put("/v1/schemas/visit", headers=auth(), json=HEALTH_SCHEMA).status_code == 201
    notice = {"id": "care", "version": "1"}
    grant(ready, who("kim"), "analytics", notice=notice)
    grant(
        ready,
        who("lee"),
        "analytics",
        "care",
        notice=notice,
        explicit=True,
        evidence={"checkbox": "health-consent-v1"},
    )
    props = {"url": "/clinic", "condition": "asthma"}
    results = send(
        ready,
        [
            event("h1", who("kim"), event_type="visit", properties=props),
            event("h2", who("lee"), event_type="visit", properties=props),
        ],
    )
    assert [r["purposes"] for r in results] == [["analytics"], ["analytics", "care"]]
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    with rt.store.read() as conn:
        rows = {r.event_id: r for r in conn.execute(select(events))}
    assert rows["h1"].sealed is None
    assert rows["h2"].sealed is not None
    assert json.loads(rows["h2"].field_purposes) == {"condition": ["care"]}


def test_no_personal_value_in_clear_in_the_sqlite_files(sqlite_settings: Settings) -> None:

    secrets = [
        "ana.private@example.com",
        "+447700900123",
        "07700 900123",
        "4111111111111111",
        "4111 1111 1111 1111",
        "GB82WEST12345698765432",
        "my flat is damp",
    ]
    with TestClient(create_app(sqlite_settings)) as client:
        client.put(
            "/v1/notices/main",
            headers=auth(),
            json={"version": "1", "text": "N.", "purposes": CONSENT_PURPOSES},
        )
        client.put("/v1/schemas/page_view", headers=auth(), json=SCHEMA)
        subject = {"identities": [{"type": "email", "value": "ana.private@example.com"}]}
        grant(client, subject, "analytics", "personalization")
        batch = []
        for n in range(50):
            batch.append(
                event(
                    f"p{n}",
                    subject,
                    properties={
                        "url": "/help",
                        "email": "ana.private@example.com",
                        "card": "4111 1111 1111 1111",
                        "message": "Call +44 7700 900123 or 07700 900123, card 4111111111111111, "
                        "IBAN GB82WEST12345698765432, mail ana.private@example.com",
                    },
                )
            )
        batch.append(event("kept", subject, properties={"url": "/", "offer": "my flat is damp"}))
        results = send(client, batch)
        assert all(r["status"] == "accepted" for r in results)
    data = b"".join(p.read_bytes() for p in Path(sqlite_settings.data_dir).glob("consentry.db*"))
    assert b"/help" in data  # a kept, non-personal value: the search works
    for value in secrets[:-1]:
        assert value.encode() not in data, value
        assert value.encode("utf-16-le") not in data, value


def test_no_event_of_a_batch_started_after_a_withdrawal_is_accepted(runtime: Runtime) -> None:
    """One thread streams batches for a subject while another withdraws: no event of a batch
    started after the withdrawal returned is accepted, and none is stored for that purpose."""

    with runtime.store.write() as conn:
        notices.publish(conn, runtime.purposes, "main", "1", "N.", CONSENT_PURPOSES, actor="t")
        runtime.schemas.put(conn, "page_view", SCHEMA, runtime.purposes.all(conn), actor="t")
    ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, "mo@example.com"),))
    runtime.consent.record(
        ConsentWrite(
            ref=ref, purposes={"analytics": "granted"}, source="web", notice=("main", "1")
        ),
        actor="t",
    )

    batches: list[tuple[float, list[Any]]] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            body = msgspec.json.encode(
                {
                    "events": [
                        event(
                            f"s{n}-{i}",
                            {"identities": [{"type": "email", "value": "mo@example.com"}]},
                        )
                        for i in range(20)
                    ]
                }
            )
            started = time.monotonic()
            results = runtime.pipeline.ingest(body, actor="t")
            batches.append((started, results))
            n += 1

    streamer = threading.Thread(target=stream)
    streamer.start()
    time.sleep(0.3)
    runtime.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor="t")
    returned = time.monotonic()
    time.sleep(0.3)
    stop.set()
    streamer.join()
    after = [results for started, results in batches if started > returned]
    before = [results for started, results in batches if started <= returned]
    assert after
    assert before
    assert any(r.status == "accepted" for results in before for r in results)
    for results in after:
        assert all(r.code == "no_consent" for r in results)
    late_ids = {r.event_id for results in after for r in results}
    with runtime.store.read() as conn:
        stored = {row.event_id for row in conn.execute(select(events.c.event_id))}
    assert not (late_ids & stored)


def _page_views(subject_id: str, prefix: str, count: int = 5) -> bytes:
    events = [
        event(
            f"{prefix}{n}",
            {"subject_id": subject_id},
            properties={
                "url": "/cart",
                "email": "lee@example.com",
                "message": "ring +447700900123",
            },
        )
        for n in range(count)
    ]
    return msgspec.json.encode({"events": events})


def _granted(runtime: Runtime, email: str, *purposes: str) -> str:
    with runtime.store.write() as conn:
        notices.publish(conn, runtime.purposes, "main", "1", "N.", CONSENT_PURPOSES, actor="t")
        runtime.schemas.put(conn, "page_view", SCHEMA, runtime.purposes.all(conn), actor="t")
    ref = SubjectRef(identities=(normalise(IdentityType.EMAIL, email),))
    result = runtime.consent.record(
        ConsentWrite(
            ref=ref, purposes=dict.fromkeys(purposes, "granted"), source="web", notice=("main", "1")
        ),
        actor="t",
    )
    return result.state.subject_id


def test_known_subjects_events_are_sealed_before_the_transaction(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events of a subject whose state and key the process holds are decided, treated and
    sealed before the batch's transaction, which only checks and stores them."""
    subject_id = _granted(runtime, "lee@example.com", "analytics")
    # The first batch loads the subject's key.
    assert all(
        r.status == "accepted"
        for r in runtime.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
    )
    inside = threading.local()
    sealed_inside: list[bytes] = []
    write = runtime.store.write

    @contextlib.contextmanager
    def watched_write() -> Iterator[Any]:
        with write() as conn:
            inside.yes = True
            try:
                yield conn
            finally:
                inside.yes = False

    seal = Sealer.seal

    def watched_seal(
        self: Sealer, plaintext: bytes, aad: bytes, nonce: bytes | None = None
    ) -> bytes:
        if getattr(inside, "yes", False):
            sealed_inside.append(aad)
        return seal(self, plaintext, aad, nonce)

    monkeypatch.setattr(runtime.store, "write", watched_write)
    monkeypatch.setattr(Sealer, "seal", watched_seal)
    results = runtime.pipeline.ingest(_page_views(subject_id, "b"), actor="t")
    assert [r.status for r in results] == ["accepted"] * 5
    assert sealed_inside == []
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.properties, events.c.sealed).where(
                events.c.event_id.in_([f"b{n}" for n in range(5)])
            )
        ).all()
    assert len(rows) == 5
    with runtime.store.read() as conn:
        sealer = runtime.subject_keys.sealer(conn, subject_id)
    for event_id, properties, blob in rows:
        assert "example.com" not in properties
        assert len(json.loads(properties)["email"]) == 64
        opened = json.loads(sealer.open(blob, f"consentry:event:{event_id}".encode()))
        assert opened == {"message": "ring <PHONE>"}


def test_a_batch_is_sealed_and_pseudonymised_in_one_call_to_the_core_before_the_transaction(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native core is called once per batch (not per event) to treat (the pure
    treatments), write and seal its rows, outside the transaction when the subject's state and
    key are held; no treater runs in Python."""
    subject_id = _granted(runtime, "lee@example.com", "analytics")
    runtime.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
    inside = threading.local()
    sealed: list[tuple[bool, list[str]]] = []
    treated: list[list[str]] = []
    write = runtime.store.write

    @contextlib.contextmanager
    def watched_write() -> Iterator[Any]:
        with write() as conn:
            inside.yes = True
            try:
                yield conn
            finally:
                inside.yes = False

    shape_batch = native.shape_batch

    def watched_shape_batch(*args: Any) -> list[tuple[object, ...]]:
        rows = shape_batch(*args)
        sealed.append((getattr(inside, "yes", False), [str(row[0]) for row in rows]))
        return rows

    many = Pseudonymise.many

    def watched_many(self: Pseudonymise, fields: list[str], values: list[Any]) -> list[Any]:
        treated.append(list(fields))
        return many(self, fields, values)

    monkeypatch.setattr(runtime.store, "write", watched_write)
    monkeypatch.setattr(native, "shape_batch", watched_shape_batch)
    monkeypatch.setattr(Pseudonymise, "many", watched_many)
    results = runtime.pipeline.ingest(_page_views(subject_id, "b", count=20), actor="t")
    assert [r.status for r in results] == ["accepted"] * 20
    assert sealed == [(False, [f"b{n}" for n in range(20)])]
    assert treated == []


def test_a_withdrawal_between_the_early_shape_and_the_transaction_wins(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A withdrawal that lands after the batch was shaped, before its transaction, decides:
    the early rows are set aside and the events refused."""
    subject_id = _granted(runtime, "kit@example.com", "analytics")
    first = runtime.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
    assert all(r.status == "accepted" for r in first)
    shape = runtime.pipeline._shape_early
    shaped: list[int] = []

    def then_withdraw(work: Any, *args: Any) -> None:
        shape(work, *args)
        shaped.extend(1 for row in work.early_rows if row is not None)
        ref = SubjectRef(subject_id=subject_id)
        runtime.consent.withdraw(ref, ["analytics"], "web", gpc=False, actor="t")

    monkeypatch.setattr(runtime.pipeline, "_shape_early", then_withdraw)
    results = runtime.pipeline.ingest(_page_views(subject_id, "b"), actor="t")
    assert len(shaped) == 5
    assert [r.code for r in results] == ["no_consent"] * 5
    with runtime.store.read() as conn:
        stored = {row.event_id for row in conn.execute(select(events.c.event_id))}
    assert stored == {f"a{n}" for n in range(5)}


def test_another_process_withdrawal_is_not_missed_by_the_early_shape(settings: Settings) -> None:
    """Two runtimes on one database (two server processes): the one ingesting holds a state
    the other has since changed; the transaction reads the new version and decides on it."""
    ingesting = Runtime(settings)
    other = Runtime(settings)
    try:
        subject_id = _granted(ingesting, "ola@example.com", "analytics", "personalization")
        first = ingesting.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
        assert [r.purposes for r in first] == [["analytics", "personalization"]] * 5
        other.consent.withdraw(
            SubjectRef(subject_id=subject_id), ["analytics"], "web", gpc=False, actor="t"
        )
        assert ingesting.consent.cache.get(subject_id).purposes["analytics"].state == "granted"  # type: ignore[union-attr]
        then = ingesting.pipeline.ingest(_page_views(subject_id, "b"), actor="t")
        assert [r.purposes for r in then] == [["personalization"]] * 5
        with ingesting.store.read() as conn:
            rows = conn.execute(
                select(events.c.event_id, events.c.purposes).where(events.c.event_id.like("b%"))
            ).all()
        assert {json.loads(p) == ["personalization"] for _, p in rows} == {True}
    finally:
        other.close()
        ingesting.close()


def test_events_are_received_when_their_transaction_reads_consent(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """received_at is taken in the batch's transaction, not when it was shaped before it: the
    withdrawal purge counts an event received at or before a withdrawal as stored under it."""
    subject_id = _granted(runtime, "eve@example.com", "analytics")
    runtime.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
    shape = runtime.pipeline._shape_early
    shaped_by: list[str] = []

    def then_wait(work: Any, *args: Any) -> None:
        shape(work, *args)
        assert work.early_rows
        assert all(row is not None for row in work.early_rows)
        shaped_by.append(clock.rfc3339(clock.now()))
        time.sleep(0.002)

    monkeypatch.setattr(runtime.pipeline, "_shape_early", then_wait)
    assert all(
        r.status == "accepted"
        for r in runtime.pipeline.ingest(_page_views(subject_id, "b"), actor="t")
    )
    with runtime.store.read() as conn:
        received = (
            conn.execute(select(events.c.received_at).where(events.c.event_id.like("b%")))
            .scalars()
            .all()
        )
    assert len(received) == 5
    assert all(clock.rfc3339(at) > shaped_by[0] for at in received)


def test_a_schema_replaced_after_the_early_shape_is_the_one_applied(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same purposes, new schema: a field that is now dropped is not stored from the early row."""
    subject_id = _granted(runtime, "ivy@example.com", "analytics")
    runtime.pipeline.ingest(_page_views(subject_id, "a"), actor="t")
    shape = runtime.pipeline._shape_early
    fields = dict(SCHEMA["fields"])
    fields["url"] = fields["url"] | {"treatment": "drop"}

    def then_replace(work: Any, *args: Any) -> None:
        shape(work, *args)
        assert work.early_rows
        assert all(row is not None for row in work.early_rows)
        with runtime.store.write() as conn:
            runtime.schemas.put(
                conn,
                "page_view",
                SCHEMA | {"fields": fields},
                runtime.purposes.all(conn),
                actor="t",
            )

    monkeypatch.setattr(runtime.pipeline, "_shape_early", then_replace)
    results = runtime.pipeline.ingest(_page_views(subject_id, "b"), actor="t")
    assert [r.purposes for r in results] == [["analytics"]] * 5
    with runtime.store.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.properties, events.c.schema_version)
        ).all()
    stored = {event_id: (json.loads(p), v) for event_id, p, v in rows}
    assert all("url" in stored[f"a{n}"][0] for n in range(5))
    assert all("url" not in stored[f"b{n}"][0] and stored[f"b{n}"][1] == 2 for n in range(5))
