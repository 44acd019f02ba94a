"""Impact assessments (Art. 35) through HTTP on both back-ends: triggers decide whether an
assessment is required (an Art. 35(3) case, or two WP248 criteria), the score grows with the
triggers, recomputed after a purpose, schema or system change and after volumes move;
reviews validated, sealed and audited; a changed assessment reopens its approval."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from itertools import combinations
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.consent.models import AutomatedDecisionBasis, LegalBasis, Purpose
from consentry.consent.purposes import PurposeRegistry
from consentry.governance import dpia
from consentry.governance.assessments import Assessments
from consentry.governance.datamap import DataMap
from consentry.governance.dpia import Trigger
from consentry.governance.models import Region
from consentry.ingest.schemas import SchemaRegistry
from consentry.operations import figures
from consentry.operations.alerts import Alerts
from consentry.settings import Settings
from consentry.storage import assessments as storage
from consentry.storage.schema import assessments
from tests.conftest import auth
from tests.consent.helpers import install_clock, publish, record
from tests.delivery.receiver import receiver
from tests.dsr.conftest import runtime_of
from tests.http.test_conventions import assert_problem, make_key

T = Trigger
BROWSE: dict[str, Any] = {
    "purposes": ["personalization"],
    "fields": {
        "page": {"type": "string", "category": "system.operations", "treatment": "keep"},
        "history": {
            "type": "string",
            "category": "user.behavior.browsing_history",
            "treatment": "keep",
        },
    },
}
ADS: dict[str, Any] = {
    "name": "Ad server",
    "kind": "webhook",
    "endpoint": "https://ads.example.com/consentry",
    "purposes": ["personalization"],
    "data_categories": ["user.behavior"],
    "region": "US",
    "transfer_mechanism": "scc",
    "tia_ref": "TIA-2026-01",
    "dpa_signed": True,
}
APPROVE = {
    "status": "approved",
    "reviewer": "Dana Reviewer",
    "dpo_advice": "Proceed once history is kept for 30 days only.",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Large scale from two subjects, so a test reaches it."""
    return dataclasses.replace(settings, assessment_large_scale_subjects=2)


def listing(client: TestClient, key: str | None = None) -> dict[str, dict[str, Any]]:
    resp = client.get("/v1/assessments", headers=auth(key) if key else auth())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["next"] is None
    return {item["assessment_id"]: item for item in body["items"]}


def fired(alerts: Alerts) -> dict[str, str]:
    return {m["groupLabels"]["alertname"]: m["status"] for m in alerts.evaluate()}


def audit_entries(client: TestClient) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit/entries", headers=auth(), params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def put(client: TestClient, assessment_id: str, body: dict[str, Any]) -> Any:
    return client.put(f"/v1/assessments/{assessment_id}", headers=auth(), json=body)


def test_required_for_an_art_35_3_case_or_two_wp248_criteria() -> None:
    def of(*found: Trigger) -> dpia.Evaluation:
        return dpia.evaluation(found)

    assert not of().required
    assert not of(T.PROFILING).required
    assert not of(T.LARGE_SCALE).required
    # Children's data are data of vulnerable subjects: one criterion, counted once.
    assert of(T.CHILDRENS_DATA, T.VULNERABLE_SUBJECTS).criteria == ("vulnerable_subjects",)
    assert not of(T.CHILDRENS_DATA, T.VULNERABLE_SUBJECTS).required
    assert of(T.PROFILING, T.SYSTEMATIC_MONITORING).required
    assert of(T.PROFILING, T.SYSTEMATIC_MONITORING).art35_3 == ()
    # Art. 35(3)(a) alone; (b) and (c) with large scale.
    assert of(T.AUTOMATED_DECISIONS).art35_3 == ("a",)
    assert of(T.AUTOMATED_DECISIONS).required
    assert of(T.SPECIAL_CATEGORY, T.LARGE_SCALE).art35_3 == ("b",)
    assert of(T.SYSTEMATIC_MONITORING, T.LARGE_SCALE).art35_3 == ("c",)
    assert of(*Trigger).score == 100


def test_the_score_never_falls_when_a_trigger_is_added() -> None:
    every = list(Trigger)
    for size in range(len(every)):
        for found in combinations(every, size):
            score = dpia.evaluation(found).score
            assert 0 <= score <= 100
            for extra in set(every) - set(found):
                assert dpia.evaluation((*found, extra)).score >= score


def test_a_decision_basis_and_recorded_inferences_are_triggers() -> None:
    """A purpose with an automated_decision_basis makes automated decisions (Art. 35(3)(a));
    one named by a recorded model inference uses new technology."""
    scoring = Purpose("scoring", "Scoring", LegalBasis.CONTRACT, 30, bit=0)
    plain = Purpose("plain", "Plain", LegalBasis.CONTRACT, 30, bit=1)
    decided = dataclasses.replace(scoring, automated_decision_basis=AutomatedDecisionBasis.LAW)
    purposes = {"scoring": decided, "plain": plain}
    found = dpia.evaluate_all(purposes, {}, 10_000, frozenset({"plain"}))
    assert T.AUTOMATED_DECISIONS in found["scoring"].triggers
    assert found["scoring"].required
    assert T.NEW_TECHNOLOGY not in found["scoring"].triggers
    assert T.NEW_TECHNOLOGY in found["plain"].triggers
    assert T.AUTOMATED_DECISIONS not in found["plain"].triggers
    before = dpia.evaluate_all({"scoring": scoring, "plain": plain}, {}, 10_000)
    assert not before["scoring"].triggers
    assert not before["plain"].triggers


def test_recomputed_when_schemas_systems_and_purposes_change(client: TestClient) -> None:
    before = listing(client)
    # Every purpose has one; personalisation profiles (one criterion): not required.
    assert {"analytics", "personalization", "advertising"} <= set(before)
    personalization = before["personalization"]
    assert personalization["triggers"] == ["profiling"]
    assert personalization["required"] is False
    assert personalization["status"] == "not_required"
    assert personalization["days_since_required"] is None
    assert before["analytics"]["triggers"] == []

    # Browsing history kept for it: systematic monitoring, a second criterion.
    assert client.put("/v1/schemas/browse", headers=auth(), json=BROWSE).status_code == 201
    after = listing(client)["personalization"]
    assert after["triggers"] == ["systematic_monitoring", "profiling"]
    assert after["wp248_criteria"] == ["systematic_monitoring", "evaluation_or_scoring"]
    assert after["required"] is True
    assert after["status"] == "required"
    assert after["days_since_required"] == 0
    assert after["scope"]["event_types"] == ["browse"]
    assert after["score"] > personalization["score"]

    # A recipient in the US under SCCs: a transfer no adequacy decision covers.
    assert client.put("/v1/systems/ads", headers=auth(), json=ADS).status_code == 201
    sent = listing(client)["personalization"]
    assert "transfer_without_adequacy" in sent["triggers"]
    assert sent["scope"]["transfers_without_adequacy"] == ["ads"]
    assert sent["score"] > after["score"]

    # A purpose whose use decides about people: Art. 35(3)(a) on its own.
    fraud = {
        "name": "Fraud screening",
        "legal_basis": "legitimate_interest",
        "retention_days": 365,
        "data_use": "essential.fraud_detection",
    }
    assert client.put("/v1/purposes/fraud", headers=auth(), json=fraud).is_success
    screened = listing(client)["fraud"]
    assert screened["triggers"] == ["automated_decisions"]
    assert screened["art35_3"] == ["a"]
    assert screened["required"] is True
    # Only the required ones, when asked.
    required = client.get("/v1/assessments?required=true", headers=auth()).json()["items"]
    assert {"fraud", "personalization"} <= {i["assessment_id"] for i in required}
    assert all(i["required"] for i in required)
    # The processing stops being a decision: no longer required, and nobody had reviewed it.
    assert client.put(
        "/v1/purposes/fraud", headers=auth(), json=fraud | {"data_use": "essential.service"}
    ).is_success
    lapsed = listing(client)["fraud"]
    assert (lapsed["required"], lapsed["status"], lapsed["triggers"]) == (
        False,
        "not_required",
        [],
    )


def test_a_review_is_validated_sealed_audited_and_reopened_by_a_change(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    assert client.put("/v1/schemas/browse", headers=auth(), json=BROWSE).status_code == 201
    assert_problem(put(client, "nothing", APPROVE), 404, "assessment_not_found")
    assert_problem(
        put(client, "personalization", APPROVE | {"dpo_advice": None}), 422, "dpo_advice_required"
    )
    ahead = fake.moment.replace(year=fake.moment.year + 1).isoformat()
    assert_problem(
        put(client, "personalization", APPROVE | {"reviewed_at": ahead}), 422, "invalid_assessment"
    )
    assert put(client, "personalization", APPROVE | {"status": "done"}).status_code == 422
    # An auditor reads them, and may not review.
    auditor = make_key(client, "auditor")
    assert "personalization" in listing(client, auditor)
    denied = client.put("/v1/assessments/personalization", headers=auth(auditor), json=APPROVE)
    assert_problem(denied, 403, "forbidden")

    fake.advance(days=3)
    started = put(client, "personalization", {"status": "in_progress", "reviewer": "Dana"})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert started.json()["days_since_required"] == 3
    approved = put(client, "personalization", APPROVE)
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["review"]["reviewer"] == "Dana Reviewer"
    assert body["review"]["dpo_advice"] == APPROVE["dpo_advice"]
    assert body["review"]["outdated"] is False
    assert listing(client)["personalization"]["status"] == "approved"

    entries = [e for e in audit_entries(client) if e["action"] == "assessment:reviewed"]
    assert [e["details"]["status"] for e in entries] == ["in_progress", "approved"]
    assert entries[-1]["details"]["dpo_advice"] is True
    # Staff's text is sealed: not in the audit log, not in the table in clear.
    for entry in entries:
        assert "Dana" not in str(entry)
    with runtime_of(client).store.read() as conn:
        rows = conn.execute(select(assessments)).all()
    assert "Dana" not in repr(rows)
    assert b"Dana" not in b"".join(bytes(r.sealed) for r in rows if r.sealed is not None)

    # Location kept too: the triggers it was approved on have changed.
    fake.advance(days=2)
    fields = BROWSE["fields"] | {
        "where": {"type": "string", "category": "user.health_and_medical", "treatment": "keep"}
    }
    changed = client.put("/v1/schemas/browse", headers=auth(), json=BROWSE | {"fields": fields})
    assert changed.is_success, changed.text
    reopened = listing(client)["personalization"]
    assert "special_category" in reopened["triggers"]
    assert reopened["status"] == "required"
    assert reopened["days_since_required"] == 0
    assert reopened["review"]["outdated"] is True
    assert reopened["review"]["triggers"] == ["systematic_monitoring", "profiling"]
    change = [e for e in audit_entries(client) if e["action"] == "assessment:changed"][-1]
    assert change["details"]["previous_status"] == "approved"
    assert change["details"]["status"] == "required"


def test_volumes_bring_large_scale_and_childrens_data(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    publish(client)
    assert listing(client)["analytics"]["triggers"] == []
    parent = {"parental_authorization": {"by": "parent@example.com", "method": "card"}}
    record(client, "kid", {"analytics": "granted"}, age_band="13_15", evidence=parent)
    record(client, "ana", {"analytics": "granted"})
    # Volumes are read again once a day (no configuration change here).
    assert listing(client)["analytics"]["triggers"] == []
    fake.advance(days=1, minutes=1)
    analytics = listing(client)["analytics"]
    assert analytics["triggers"] == ["childrens_data", "large_scale"]
    assert analytics["scope"]["subjects"] == 2
    assert analytics["scope"]["minors"] == 1
    assert analytics["required"] is True


def test_required_and_not_approved_for_30_days_raises_an_alert(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = clock.now()
    moment = {"now": start}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    rt = runtime_of(client)
    assert client.put("/v1/schemas/browse", headers=auth(), json=BROWSE).status_code == 201
    assert listing(client)["personalization"]["status"] == "required"
    with receiver() as hook:
        alerts = Alerts(dataclasses.replace(rt.settings, alert_webhook=hook.url), rt.store)
        moment["now"] = start + timedelta(days=29, hours=23)
        assert "assessment_overdue" not in fired(alerts)
        # Work under way is not an approval: the clock keeps running.
        started = put(client, "personalization", {"status": "in_progress", "reviewer": "Dana"})
        assert started.status_code == 200, started.text
        moment["now"] = start + timedelta(days=30)
        assert fired(alerts)["assessment_overdue"] == "firing"
        with rt.store.read() as conn:
            assert figures.assessments_overdue(conn, moment["now"]) == 1
        assert put(client, "personalization", APPROVE).status_code == 200
        assert fired(alerts)["assessment_overdue"] == "resolved"
        alerts.stop()
    sent = [b for b in hook.bodies() if b["groupLabels"]["alertname"] == "assessment_overdue"]
    assert [b["status"] for b in sent] == ["firing", "resolved"]


def test_two_processes_computing_at_once_compute_once(client: TestClient) -> None:
    rt = runtime_of(client)
    others = [
        Assessments(
            rt.store,
            bytes(32),
            PurposeRegistry(),
            SchemaRegistry(),
            DataMap(rt.kek),
            Region.EU,
            2,
        )
        for _ in range(4)
    ]
    start = threading.Barrier(len(others))
    results: list[bool] = []

    def run(assessor: Assessments) -> None:
        start.wait()
        results.append(assessor.refresh())

    threads = [threading.Thread(target=run, args=(a,)) for a in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    changes = [e for e in audit_entries(client) if e["action"] == "assessment:changed"]
    assert len(changes) == len({e["details"]["assessment_id"] for e in changes})


def test_the_counting_holds_no_writer(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The volumes are counted in a read transaction: a write (an ingest batch) goes on while
    they are, rather than waiting behind a count over every subject."""
    rt = runtime_of(client)
    wrote: list[bool] = []
    counted = storage.live_subjects

    def live_subjects(conn: Any) -> int:
        def write() -> None:
            with rt.store.write() as other:
                other.execute(select(assessments).limit(1))
            wrote.append(True)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=3)
        assert wrote, "a write waited for the assessments' counting"
        return counted(conn)

    monkeypatch.setattr(storage, "live_subjects", live_subjects)
    assert rt.assessments.refresh(force=True)
    assert wrote == [True]


def test_the_periodic_sweep_computes_a_change_nobody_has_read(client: TestClient) -> None:
    rt = runtime_of(client)
    assert rt.retention.run_steps("test")["assessments"] == {"recomputed": 1}
    assert rt.retention.run_steps("test")["assessments"] == {"recomputed": 0}
    assert client.put("/v1/schemas/browse", headers=auth(), json=BROWSE).status_code == 201
    with rt.store.read() as conn:
        before = conn.execute(
            select(assessments.c.required).where(assessments.c.assessment_id == "personalization")
        ).scalar_one()
    assert before is False
    assert rt.retention.run_steps("test")["assessments"] == {"recomputed": 1}
    with rt.store.read() as conn:
        row = conn.execute(
            select(assessments).where(assessments.c.assessment_id == "personalization")
        ).one()
    assert (row.required, row.status) == (True, "required")
    assert row.required_since is not None


def test_a_conclusion_reopened_by_hand_restarts_the_clock(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install_clock(monkeypatch)
    assert client.put("/v1/schemas/browse", headers=auth(), json=BROWSE).status_code == 201
    assert listing(client)["personalization"]["days_since_required"] == 0
    fake.advance(days=10)
    assert put(client, "personalization", APPROVE).status_code == 200
    fake.advance(days=40)
    reopened = put(client, "personalization", {"status": "in_progress", "reviewer": "Dana"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["days_since_required"] == 0
    with runtime_of(client).store.read() as conn:
        assert figures.assessments_overdue(conn, clock.now()) == 0
