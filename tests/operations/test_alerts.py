"""The moment-of-use check and the alert webhook (both back-ends): a delivery and a read forced
through stale remembered answers after a withdrawal are stopped right before the send and
before the rows are returned, counted in `consentry_processed_without_consent_total` and
audited; the alert webhook (a real receiver on loopback) gets `processed_without_consent`
once it has held 5 s, then its resolution, and other alerts as the clock moves."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from consentry import clock
from consentry.operations.alerts import Alerts, Rule
from consentry.reads.visibility import Excluded
from consentry.storage import operations as sql
from consentry.storage import reads as reads_sql
from consentry.storage.schema import outbox
from tests.conftest import auth
from tests.delivery.receiver import receiver
from tests.delivery.test_delivery import add, page_view, runtime_of, system, worker
from tests.ingest.test_pipeline import grant, send, who
from tests.operations.scrape import value
from tests.operations.test_metrics import scrape


class _Stale(dict[Any, Any]):
    """Remembered send-time answers that never notice a change: every (system, subject,
    purposes) is still allowed for the purposes it was accepted for."""

    def get(self, key: Any, default: Any = None) -> Any:
        return _Always(["analytics"])


@dataclasses.dataclass
class _Always:
    value: list[str]

    def holds(self, *_: Any) -> bool:
        return True


def _actions(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/v1/audit/entries?limit=500", headers=auth()).json()["items"])


def test_stale_paths_are_stopped_counted_audited_and_alerted(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_of(gateway)
    grant(gateway, who("ana"), "analytics")
    grant(gateway, who("bob"), "analytics")
    with receiver() as r, receiver() as hook:
        add(gateway, "warehouse", system(r.url))
        assert [x["status"] for x in send(gateway, [page_view("e1"), page_view("e2", "bob")])] == [
            "accepted",
            "accepted",
        ]
        # Read once: the read's visibility remembers ana as readable for analytics.
        assert len(gateway.get("/v1/events?purpose=analytics", headers=auth()).json()["items"]) == 2
        with rt.store.read() as conn:
            version = reads_sql.policy_version(conn)
            queued = conn.execute(select(outbox).where(outbox.c.event_id == "e1")).one()
        withdrawn = gateway.post(
            "/v1/consents/withdraw",
            headers=auth(),
            json={"subject": who("ana"), "purposes": ["analytics"], "source": "web"},
        )
        assert withdrawn.status_code == 200

        # Delivery: ana's row, decided before the withdrawal, is queued again as if the
        # withdrawal had missed it, and the worker's remembered answers are made stale.
        with rt.store.write() as conn:
            assert conn.execute(select(outbox).where(outbox.c.event_id == "e1")).first() is None
            conn.execute(insert(outbox).values(**queued._mapping))
        w = worker(gateway)
        w._answers = _Stale()
        assert w.run_once() == 1
        assert [e["event_id"] for e in r.events()] == ["e2"]  # bob's only

        # Read: the visibility's remembered exclusions are made stale on purpose (as of
        # before the withdrawal, at the version now current).
        with rt.store.read() as conn:
            now_version = reads_sql.policy_version(conn)
        assert now_version > version
        rt.reads.visibility._known["analytics"] = Excluded(reads_sql.KeySet(), now_version, None)
        page = gateway.get("/v1/events?purpose=analytics", headers=auth()).json()["items"]
        assert len(page) == 1  # bob's; ana's row was stopped before it was returned

        _, found = scrape(gateway)
        assert value(found, "consentry_processed_without_consent_total") == 2
        stops = [e for e in _actions(gateway) if e["action"] == "consent:processed_without"]
        assert sorted((e["details"]["use"], e["details"]["events"]) for e in stops) == [
            ("delivery:warehouse", 1),
            ("read:analytics", 1),
        ]

        # The alert webhook: fires once held 5 s, resolves an hour after the last stop.
        settings = dataclasses.replace(rt.settings, alert_webhook=hook.url)
        alerts = Alerts(settings, rt.store)
        start = clock.now()
        at(monkeypatch, start)
        assert alerts.evaluate() == []  # pending
        at(monkeypatch, start + timedelta(seconds=6))
        [fired] = alerts.evaluate()
        assert alerts.evaluate() == []  # sent once
        at(monkeypatch, start + timedelta(hours=2))
        [resolved] = alerts.evaluate()
        # Three months on: the keys are due and ana's withdrawal is long past its purge date.
        at(monkeypatch, start + timedelta(days=91))
        later = {m["groupLabels"]["alertname"]: m["status"] for m in alerts.evaluate()}
        # The purge passes ana's withdrawal: that alert resolves, the keys stay due.
        rt.erasure.purge_withdrawals(actor="test")
        purged = {m["groupLabels"]["alertname"]: m["status"] for m in alerts.evaluate()}
        alerts.stop()
    assert later == {"key_rotation_due": "firing", "withdrawal_purge_overdue": "firing"}
    assert purged == {"withdrawal_purge_overdue": "resolved"}
    assert [b["status"] for b in hook.bodies()] == [
        "firing",
        "resolved",
        "firing",
        "firing",
        "resolved",
    ]
    assert fired == hook.bodies()[0]
    assert fired["version"] == "4"
    assert fired["groupKey"] == '{}:{alertname="processed_without_consent"}'
    [alert] = fired["alerts"]
    assert alert["labels"]["alertname"] == "processed_without_consent"
    assert alert["labels"]["severity"] == "critical"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert _t(alert["startsAt"]) == start
    [gone] = resolved["alerts"]
    assert resolved["status"] == gone["status"] == "resolved"
    assert _t(gone["endsAt"]) == start + timedelta(hours=2)


def test_a_webhook_that_fails_gets_the_change_at_the_next_evaluation(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_of(gateway)
    with receiver([500]) as hook:
        alerts = Alerts(dataclasses.replace(rt.settings, alert_webhook=hook.url), rt.store)
        at(monkeypatch, clock.now() + timedelta(days=91))
        assert alerts.evaluate() == []  # the receiver failed
        [again] = alerts.evaluate()
        assert alerts.evaluate() == []
        alerts.stop()
    assert again["groupLabels"] == {"alertname": "key_rotation_due"}
    assert hook.attempts == 2


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: moment)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_two_first_stops_of_one_use_at_once_are_both_counted(gateway: TestClient) -> None:
    """The first stop of a use creates its count: two at once (the second waiting on the
    first's transaction) must add up, not fail the second (its read, export or claim)."""
    rt = runtime_of(gateway)
    now = clock.now()
    counted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with rt.store.write() as conn:
            sql.count_processed_without_consent(conn, "read:analytics", 1, now)
            counted.set()
            release.wait(10)

    def second() -> None:
        try:
            with rt.store.write() as conn:
                sql.count_processed_without_consent(conn, "read:analytics", 2, now)
        except BaseException as exc:
            errors.append(exc)

    a = threading.Thread(target=first)
    a.start()
    assert counted.wait(10)
    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.3)  # the second is waiting on the first's row (or writer lock)
    release.set()
    a.join()
    b.join()
    assert not errors, repr(errors[0])[:300]
    _, found = scrape(gateway)
    assert value(found, "consentry_processed_without_consent_total") == 3


def test_figures_are_read_before_the_alert_states_are_locked(gateway: TestClient) -> None:
    """The figures (a dozen counts, the outbox's over all its rows) are read outside the
    writer's lock: a writer started while they are read goes through at once."""
    rt = runtime_of(gateway)
    through: list[bool] = []

    def write_meanwhile(conn: Any, now: datetime, settings: Any) -> float:
        def step() -> None:
            with rt.store.write() as other:
                sql.lock_alerts(other)

        writer = threading.Thread(target=step)
        writer.start()
        writer.join(1.0)
        through.append(not writer.is_alive())
        return 0.0

    rule = Rule("probe", "warning", "A figure that writes meanwhile.", write_meanwhile)
    Alerts(rt.settings, rt.store, (rule,)).evaluate()
    assert through == [True]


class _Recorded(Alerts):
    """The evaluator with its webhook replaced by a list (or by a send that fails)."""

    def __init__(self, *args: Any, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail = fail
        self.got: list[tuple[str, str]] = []
        self.sending, self.release = threading.Event(), threading.Event()

    def _post(self, message: dict[str, Any]) -> bool:
        if self.fail:
            self.sending.set()
            self.release.wait(10)
            return False
        self.got.append((message["groupLabels"]["alertname"], message["status"]))
        return True


def test_a_reading_older_than_the_alerts_state_leaves_it_alone(gateway: TestClient) -> None:
    """Figures are read before the lock: worker A reads its figure, worker B reads a later one
    and moves the alert on (firing -> resolved) before A takes the lock; A leaves it alone
    rather than fire it again from its older reading."""
    rt = runtime_of(gateway)
    read, release = threading.Event(), threading.Event()

    def slow_reading(conn: Any, now: datetime, settings: Any) -> float:
        read.set()
        release.wait(10)
        return 1.0

    def probe(figure: Any) -> Rule:
        return Rule("probe", "warning", "A figure the test sets.", figure)

    first = _Recorded(rt.settings, rt.store, (probe(lambda c, n, s: 1.0),))
    first.evaluate()  # firing (no hold)
    a = _Recorded(rt.settings, rt.store, (probe(slow_reading),))
    b = _Recorded(rt.settings, rt.store, (probe(lambda c, n, s: 0.0),))
    evaluating = threading.Thread(target=a.evaluate)
    evaluating.start()
    assert read.wait(10)  # A has read its figure (1) and not yet taken the lock
    b.evaluate()  # B reads 0: firing -> resolved, sent
    release.set()
    evaluating.join()
    assert (first.got, b.got, a.got) == ([("probe", "firing")], [("probe", "resolved")], [])


def test_a_failed_send_leaves_a_later_change_of_the_alert_alone(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A claims "firing" and its send fails after worker B has moved the alert to
    resolved and sent that: A's failure marks only the change it claimed unsent, so
    "resolved" is not sent twice."""
    rt = runtime_of(gateway)
    figure = {"value": 1.0}
    rule = Rule("probe", "warning", "A figure the test sets.", lambda c, n, s: figure["value"])
    a = _Recorded(rt.settings, rt.store, (rule,), fail=True)
    b = _Recorded(rt.settings, rt.store, (rule,))
    start = clock.now()
    at(monkeypatch, start)
    sending = threading.Thread(target=a.evaluate)
    sending.start()
    assert a.sending.wait(10)  # A claimed "firing" and is sending it
    figure["value"] = 0.0
    at(monkeypatch, start + timedelta(seconds=10))
    b.evaluate()  # B: firing -> resolved, sent
    a.release.set()  # A's send fails
    sending.join()
    b.evaluate()
    assert b.got == [("probe", "resolved")]


class _Killed(BaseException):
    """The process ends here (SIGKILL): nothing after it runs."""


class _Dies(_Recorded):
    def _post(self, message: dict[str, Any]) -> bool:
        raise _Killed


def test_a_change_whose_sender_died_is_sent_by_another_once_its_claim_ran_out(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A claims "firing" and dies before sending it: worker B leaves it alone while
    A's claim lasts, then sends it (at least once; never lost)."""
    rt = runtime_of(gateway)
    rule = Rule("probe", "warning", "A figure the test sets.", lambda c, n, s: 1.0)
    a = _Dies(rt.settings, rt.store, (rule,))
    b = _Recorded(rt.settings, rt.store, (rule,))
    start = clock.now()
    at(monkeypatch, start)
    with pytest.raises(_Killed):
        a.evaluate()
    b.evaluate()
    assert b.got == []
    at(monkeypatch, start + a.claim + timedelta(seconds=1))
    b.evaluate()
    b.evaluate()
    assert b.got == [("probe", "firing")]
