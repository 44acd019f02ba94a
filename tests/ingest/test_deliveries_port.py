"""The Deliveries port (ingest/ports.py): the pipeline hands each accepted event on, as an
AcceptedEvent, in the transaction that stores it; refused events never reach it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from consentry.consent.models import Purpose, SubjectConsent
from consentry.consent.tokens import TokenVerifier
from consentry.ingest.pipeline import Pipeline
from consentry.ingest.ports import AcceptedEvent, Deliveries
from consentry.runtime import Runtime
from tests.ingest.test_pipeline import event, grant, who

PROPS = {
    "url": "/home",
    "email": "ana@example.com",
    "message": "call me on +44 7700 900123",
    "offer": "spring",
    "debug": True,
}


@dataclass
class Recorded:
    """A Deliveries port that keeps what it is handed."""

    calls: list[tuple[list[AcceptedEvent], int, set[str], set[str]]] = field(default_factory=list)

    def enqueue(
        self,
        conn: Connection,
        accepted: Sequence[AcceptedEvent],
        *,
        version: int,
        states: Mapping[str, SubjectConsent],
        purposes: Mapping[str, Purpose],
    ) -> None:
        assert conn.in_transaction()
        self.calls.append((list(accepted), version, set(states), set(purposes)))


def pipeline_with(rt: Runtime, port: Deliveries) -> Pipeline:
    tokens = TokenVerifier(rt.signing_keys, rt.settings.issuer, rt.reload_signing_keys)
    return Pipeline(
        rt.store,
        rt.subjects,
        rt.schemas,
        rt.consent,
        rt.treatments,
        tokens,
        rt.settings.default_phone_region,
        port,
    )


def body(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_accepted_events_reach_the_port_typed_and_refused_ones_do_not(
    ready: TestClient,
) -> None:
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    subject_id = grant(ready, who("ana"), "analytics", "personalization")["subject_id"]
    port = Recorded()
    pipeline = pipeline_with(rt, port)

    refused_only = body(event("r1", who("nobody")), event("r2", who("ana"), event_type="nope"))
    results = pipeline.ingest(refused_only, actor="test")
    assert [r.code for r in results] == ["no_consent", "unknown_event_type"]
    assert port.calls == []

    # Each batch hands on its accepted events, and only those, once.
    for n in (1, 2):
        mixed = body(
            event(f"n{n}", who("nobody")),
            event(f"a{n}", who("ana"), properties=PROPS),
            event(f"u{n}", who("ana"), event_type="nope"),
        )
        results = pipeline.ingest(mixed, actor="test")
        assert [r.status for r in results] == ["rejected", "accepted", "rejected"]
        accepted, version, states, purposes = port.calls[-1]
        assert len(port.calls) == n
        assert [type(a) for a in accepted] == [AcceptedEvent]
        one = accepted[0]
        assert one.event_id == f"a{n}"
        assert one.event_type == "page_view"
        assert one.occurred_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
        assert one.subject_id == subject_id
        assert list(one.purposes) == ["analytics", "personalization"]
        # Dropped fields are gone; treated ones are handed on treated, in clear.
        assert set(one.values) == {"url", "email", "message", "offer"}
        assert one.values["url"] == "/home"
        assert one.values["offer"] == "spring"
        assert one.values["email"] != PROPS["email"]
        assert "7700 900123" not in str(one.values["message"])
        assert one.fields["offer"] == ["personalization"]
        assert one.fields["url"] is None
        assert one.categories["email"] == "user.contact.email"
        assert one.sensitive == frozenset({"card"})
        assert version >= 1
        assert subject_id in states
        assert {"analytics", "personalization"} <= purposes


@dataclass
class Unread:
    """A Deliveries port with nowhere to deliver to (as the outbox with no systems): it keeps
    what it is handed and reads none of it."""

    handed: list[Sequence[AcceptedEvent]] = field(default_factory=list)

    def enqueue(
        self,
        conn: Connection,
        accepted: Sequence[AcceptedEvent],
        *,
        version: int,
        states: Mapping[str, SubjectConsent],
        purposes: Mapping[str, Purpose],
    ) -> None:
        self.handed.append(accepted)


def test_an_accepted_event_is_built_for_delivery_only_when_the_port_reads_it(
    ready: TestClient,
) -> None:
    rt: Runtime = ready.app.state.runtime  # type: ignore[attr-defined]
    grant(ready, who("ana"), "analytics", "personalization")
    port = Unread()
    pipeline = pipeline_with(rt, port)
    results = pipeline.ingest(
        body(event("b1", who("ana"), properties=PROPS), event("b2", who("ana"))), actor="test"
    )
    assert [r.status for r in results] == ["accepted", "accepted"]
    [handed] = port.handed
    assert len(handed) == 2
    # Nothing is held built: each read builds the event anew, so a port that reads none
    # (no systems in the data map) costs the batch nothing per event.
    first = handed[0]
    assert first is not handed[0]
    assert first == handed[0]
    assert [a.event_id for a in handed] == ["b1", "b2"]
    assert [a.event_id for a in handed[1:]] == ["b2"]
    assert first.values["url"] == "/home"
    assert "email" in first.values
