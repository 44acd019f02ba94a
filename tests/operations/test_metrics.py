"""`GET /metrics` (both back-ends) after real consent, ingest, delivery and request work: the
counters move by what was done, the figures read from the database say what is there, latency
is labelled by route template, no label holds personal data, only allowed callers scrape, and
`docs/alerts.yml` names every alert over metrics that the scrape exposes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from consentry import clock
from consentry.operations.alerts import Alerts
from consentry.storage import delivery as delivery_sql
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, add_vendor, page_view, runtime_of, system, worker
from tests.delivery.test_propagation import record, updates
from tests.ingest.test_pipeline import grant, send, who
from tests.operations.conftest import METRICS_TOKEN
from tests.operations.scrape import Samples, families, samples, value

ALERTS = Path(__file__).parent.parent.parent / "docs" / "alerts.yml"
# API.md, Operations: Alerts.
ALERT_NAMES = {
    "incident_created",
    "incident_deadline_near",
    "processed_without_consent",
    "request_overdue",
    "request_ack_due",
    "withdrawal_purge_overdue",
    "rights_ack_overdue",
    "key_rotation_due",
    "dpa_expiring",
    "assessment_overdue",
    "delivery_dead",
    "misclassified_values",
}


def scrape(client: TestClient) -> tuple[str, Samples]:
    resp = client.get("/metrics", headers=auth(METRICS_TOKEN))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return resp.text, samples(resp.text)


def delta(before: Samples, after: Samples, name: str, **labels: Any) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics_count_the_work_done_and_hold_no_personal_data(gateway: TestClient) -> None:
    # Who may scrape: not anyone (the test client is not on loopback), not a collector.
    assert gateway.get("/metrics").status_code == 401
    assert gateway.get("/metrics", headers=auth("not-a-key")).status_code == 401
    collector = gateway.post(
        "/v1/api-keys", headers=auth(), json={"role": "collector", "label": "web"}
    ).json()["key"]
    refused = gateway.get("/metrics", headers=auth(collector))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert gateway.get("/metrics", headers=auth()).status_code == 200  # the admin key

    _, before = scrape(gateway)
    ana = grant(gateway, who("ana"), "analytics")["subject_id"]
    grant(gateway, who("bob"), "analytics")
    withdrawn = gateway.post(
        "/v1/consents/withdraw",
        headers=auth(),
        json={"subject": who("bob"), "purposes": ["analytics"], "source": "web"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    for name in ("ana", "carl"):
        checked = gateway.post(
            "/v1/consents/check",
            headers=auth(),
            json={"subject": who(name), "purpose": "analytics"},
        )
        assert checked.status_code == 200
    assert gateway.get(f"/v1/subjects/{ana}", headers=auth()).status_code == 200
    request = gateway.post(
        "/v1/requests",
        headers=auth(),
        json={"type": "access", "subject": who("dora"), "jurisdiction": "US-CA"},
    )
    assert request.status_code == 202, request.text
    with receiver() as r:
        add(gateway, "warehouse", system(r.url))
        results = send(gateway, [page_view("e1"), page_view("e2", "carl")])
        assert [x["status"] for x in results] == ["accepted", "rejected"]
        _, waiting = scrape(gateway)
        assert value(waiting, "consentry_deliveries_pending", system_id="warehouse") == 1
        assert worker(gateway).run_once() == 1
        assert len(r.events()) == 1
    text, after = scrape(gateway)

    assert delta(before, after, "consentry_events_total", outcome="accepted", code="") == 1
    assert (
        delta(before, after, "consentry_events_total", outcome="rejected", code="no_consent") == 1
    )
    assert delta(before, after, "consentry_consent_checks_total", reason="granted") == 1
    assert delta(before, after, "consentry_consent_checks_total", reason="never_asked") == 1
    assert delta(before, after, "consentry_consent_changes_total", state="granted") == 2
    assert delta(before, after, "consentry_consent_changes_total", state="withdrawn") == 1
    assert (
        delta(
            before, after, "consentry_deliveries_total", system_id="warehouse", outcome="delivered"
        )
        == 1
    )
    assert value(after, "consentry_deliveries_pending", system_id="warehouse") == 0
    assert value(after, "consentry_processed_without_consent_total") == 0
    assert value(after, "consentry_requests_open", type="access") == 1
    assert value(after, "consentry_requests_overdue") == 0
    assert value(after, "consentry_request_acknowledgements_due") == 0
    assert value(after, "consentry_audit_entries") > value(before, "consentry_audit_entries") > 0
    for key in ("master", "signing"):
        assert 0 <= value(after, "consentry_key_age_seconds", key=key) < 3600
    # Latency by route template: the subject's id is in the path, never in a label.
    latency = "consentry_request_duration_seconds_count"
    route = "/v1/subjects/{subject_id}"
    assert delta(before, after, latency, method="GET", route=route, status="200") == 1
    assert delta(before, after, latency, method="POST", route="/v1/events", status="200") == 1
    assert ana not in text
    assert "example.com" not in text
    assert "ana" not in {v for _, labels in after for _, v in labels}

    # docs/alerts.yml: every alert of API.md, each over metrics that /metrics exposes.
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERT_NAMES
    exposed = families(text) | names_of(after)
    for rule in rules:
        used = {w for w in _words(rule["expr"]) if w.startswith("consentry_")}
        assert used, rule["alert"]
        assert used <= exposed, (rule["alert"], used - exposed)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def names_of(found: Samples) -> set[str]:
    return {name for name, _ in found}


def _words(expr: str) -> set[str]:
    out, word = set(), ""
    for ch in expr + " ":
        if ch.isalnum() or ch == "_":
            word += ch
        else:
            if word:
                out.add(word)
            word = ""
    return out


def test_only_notices_awaiting_an_answer_count_as_overdue(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `consent_updated` withheld at send time (crm's DPA lapsed after it was queued) is
    never sent, so never answered: past its due date it counts neither in
    `consentry_rights_acknowledgements_overdue` nor for the `rights_ack_overdue` alert. A
    notice still waiting for a receiver that keeps failing counts, and fires the alert."""
    rt = runtime_of(gateway)
    with receiver() as hook, receiver() as rights, receiver(default=503) as failing:
        body = system(
            hook.url,
            purposes=["analytics", "personalization"],
            rights_endpoint=rights.url,
            consent_events=True,
            vendor=add_vendor(gateway),
        )
        add(gateway, "crm", body)
        subject_id = record(gateway, analytics="granted")["subject_id"]
        worker(gateway).run_once()
        record(gateway, personalization="granted")
        resp = gateway.put("/v1/systems/crm", headers=auth(), json=body | {"dpa_signed": False})
        assert resp.status_code == 200, resp.text
        worker(gateway).run_once()
        assert len(updates(rights)) == 1
        with rt.store.read() as conn:
            listed = rt.rights_notices.of(conn, subject_id=subject_id)
        assert [n["status"] for n in listed] == ["acknowledged", "withheld"]

        alerts = Alerts(dataclasses.replace(rt.settings, alert_webhook=hook.url), rt.store)
        start = clock.now()
        monkeypatch.setattr(clock, "now", lambda: start + timedelta(days=30))
        _, found = scrape(gateway)
        assert value(found, "consentry_rights_acknowledgements_overdue") == 0
        fired = {m["groupLabels"]["alertname"] for m in alerts.evaluate()}
        assert "rights_ack_overdue" not in fired

        monkeypatch.setattr(clock, "now", lambda: start)
        add(
            gateway,
            "slow",
            system(hook.url, rights_endpoint=failing.url, consent_events=True),
        )
        record(gateway, analytics="denied")
        worker(gateway).run_once()
        assert failing.attempts >= 1
        monkeypatch.setattr(clock, "now", lambda: start + timedelta(days=30))
        _, found = scrape(gateway)
        assert value(found, "consentry_rights_acknowledgements_overdue") == 1
        fired = {m["groupLabels"]["alertname"] for m in alerts.evaluate()}
        alerts.stop()
        assert "rights_ack_overdue" in fired


def test_a_delivery_claim_that_rolls_back_counts_nothing(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliveries are counted once their transaction has committed: a claim that refuses a
    row and then rolls back adds nothing to `consentry_deliveries_total`; the claim that
    commits counts the refusal once."""
    rt = runtime_of(gateway)
    grant(gateway, who("ana"), "analytics")
    with receiver() as r:
        add(gateway, "warehouse", system(r.url))
        assert [x["status"] for x in send(gateway, [page_view("e1")])] == ["accepted"]
        with rt.store.read() as conn:
            queued = conn.execute(select(outbox).where(outbox.c.event_id == "e1")).one()
        withdrawn = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "web"},
        )
        assert withdrawn.status_code == 200
        # Queued again as if the withdrawal had missed it: the claim refuses it.
        with rt.store.write() as conn:
            conn.execute(insert(outbox).values(**queued._mapping))
        _, before = scrape(gateway)
        w = worker(gateway)

        def fails(*_: Any) -> None:
            raise RuntimeError("the claim's transaction fails after counting")

        with monkeypatch.context() as patched:
            patched.setattr(delivery_sql, "add_recipients", fails)
            with pytest.raises(RuntimeError):
                w.run_once()
        _, rolled_back = scrape(gateway)
        assert w.run_once() == 0
        _, committed = scrape(gateway)
        assert r.events() == []
    refused = {"system_id": "warehouse", "outcome": "refused"}
    assert delta(before, rolled_back, "consentry_deliveries_total", **refused) == 0
    assert delta(before, committed, "consentry_deliveries_total", **refused) == 1
