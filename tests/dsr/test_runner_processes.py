"""The request runner in two processes at once on one PostgreSQL database (two gateways):
each overdue request is marked overdue once and each withdrawal purged once, whether the two
run their background passes (under the runner's lease) or a pass each as commands
(`consentry requests run` beside a server: under the rows' locks)."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections import Counter
from datetime import timedelta
from multiprocessing.synchronize import Event

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry import clock
from consentry.app import create_app
from consentry.audit.events import AuditAction
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.dialect import database_url
from consentry.storage.engine import Store
from consentry.storage.schema import audit_entries
from tests.conftest import auth
from tests.dsr.conftest import CONSENT_PURPOSES, SCHEMA, email, grant, request, send

SUBJECTS = 30
# Far enough on that every request is past its deadline (45 days at most) and every
# withdrawal settled, not so far that a grant lapses (13 months).
LATER = timedelta(days=100)


def _runner(settings: Settings, background: bool, ready: Event, go: Event, done: Event) -> None:
    """Another gateway: its runner, a background pass every 50 ms until `done`, or one pass."""
    real = clock.now
    clock.now = lambda: real() + LATER  # type: ignore[assignment]
    runtime = Runtime(settings)
    try:
        ready.set()
        go.wait(60)
        if background:
            runtime.runner.start()
            done.wait(60)
            runtime.runner.stop()
        else:
            runtime.runner.run_pending()
    finally:
        runtime.close()


def _prepare(settings: Settings) -> None:
    """Subjects each with an access request and a withdrawal of one purpose of their events."""
    with TestClient(create_app(settings)) as client:
        notice = {"version": "1", "text": "Notice.", "purposes": CONSENT_PURPOSES}
        assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
        assert client.put("/v1/schemas/chat", headers=auth(), json=SCHEMA).status_code == 201
        for n in range(SUBJECTS):
            subject = email(f"twice{n}")
            grant(client, subject, "analytics", "personalization")
            send(client, subject, 2, f"e{n}", topic="t", offer="o")
            withdrawn = client.post(
                "/v1/consents/withdraw",
                headers=auth(),
                json={"subject": subject, "purposes": ["personalization"]},
            )
            assert withdrawn.status_code == 200, withdrawn.text
            request(client, {"type": "access", "subject": subject, "jurisdiction": "US-CA"})


def _actions(settings: Settings) -> Counter[str]:
    store = Store(database_url(settings))
    try:
        with store.read() as conn:
            return Counter(conn.execute(select(audit_entries.c.action)).scalars())
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("background", [True, False], ids=["background", "commands"])
def test_two_processes_mark_each_request_overdue_and_purge_each_withdrawal_once(
    settings: Settings, background: bool
) -> None:
    settings = dataclasses.replace(settings, dsr_poll_seconds=0)
    _prepare(settings)
    before = _actions(settings)
    assert before[AuditAction.REQUEST_OVERDUE] == 0
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Event()
    readies = [context.Event() for _ in range(2)]
    running = dataclasses.replace(settings, dsr_poll_seconds=0.05)
    processes = [
        context.Process(target=_runner, args=(running, background, ready, go, done))
        for ready in readies
    ]
    for process in processes:
        process.start()
    try:
        assert all(ready.wait(60) for ready in readies)
        go.set()
        if background:
            # Passes enough for both processes to have done everything (twice, without the
            # lease and the rows' locks).
            done.wait(2.0)
            done.set()
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    after = _actions(settings) - before
    once = {AuditAction.REQUEST_OVERDUE: SUBJECTS, AuditAction.EVENTS_WITHDRAWAL_PURGED: SUBJECTS}
    assert {action: after[action] for action in once} == once
