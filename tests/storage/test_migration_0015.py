"""Migration 0015 on both back-ends: the current consent per subject and purpose is built from
the ledger written before it, every subject with a history is counted by the summary with
the status its ledger gives, and the events stored before it count as accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text

from consentry.consent.purposes import PurposeRegistry
from consentry.operations import summary
from consentry.storage.engine import Store
from consentry.storage.migrate import alembic_config
from tests.storage.test_migrations import empty_store, schema_diffs

__all__ = ["empty_store"]
T1, T2, T3 = (f"2026-11-20T10:00:0{i}.000000Z" for i in (1, 2, 3))
LATER = "2099-01-01T00:00:00.000000Z"


def test_0015_builds_current_consent_and_stale_statuses(empty_store: Store) -> None:
    config = alembic_config(empty_store)
    command.upgrade(config, "0012")
    subjects = [("sub_1", 3), ("sub_2", 1), ("sub_3", 0)]
    entries = [
        ("sub_1", 1, "analytics", "granted", T1, LATER),
        ("sub_1", 2, "analytics", "denied", T2, None),
        ("sub_1", 3, "marketing", "granted", T3, LATER),
        ("sub_2", 1, "analytics", "granted", T1, LATER),
    ]
    received = [T1, T2, "2026-11-21T23:59:59.999999Z"]
    with empty_store.write() as conn:
        for seq, at in enumerate(received, 1):
            conn.execute(
                text(
                    "INSERT INTO events (event_id, event_type, schema_version, occurred_at, "
                    "received_at, subject_id, purposes, properties) "
                    "VALUES (:e, 'page_view', 1, :a, :a, 'sub_1', '[\"analytics\"]', '{}')"
                ),
                {"e": f"ev-{seq}", "a": at},
            )
        for subject_id, version in subjects:
            conn.execute(
                text(
                    "INSERT INTO subjects (subject_id, created_at, consent_version) "
                    "VALUES (:s, :c, :v)"
                ),
                {"s": subject_id, "c": T1, "v": version},
            )
        for subject_id, version, purpose, state, at, expires in entries:
            conn.execute(
                text(
                    "INSERT INTO consent_ledger (subject_id, version, purpose, state, source, "
                    "at, expires_at, explicit, actor) "
                    "VALUES (:s, :v, :p, :st, 'web', :a, :e, false, 'test')"
                ),
                {"s": subject_id, "v": version, "p": purpose, "st": state, "a": at, "e": expires},
            )
    command.upgrade(config, "0015")
    with empty_store.read() as conn:
        current = conn.execute(
            text(
                "SELECT subject_id, purpose, state, version FROM consent_current "
                "ORDER BY subject_id, purpose"
            )
        ).all()
        stale = conn.execute(text("SELECT subject_id, basis FROM subject_status")).all()
    assert [tuple(r) for r in current] == [
        ("sub_1", "analytics", "denied", 2),
        ("sub_1", "marketing", "granted", 3),
        ("sub_2", "analytics", "granted", 1),
    ]
    assert sorted(tuple(r) for r in stale) == [("sub_1", ""), ("sub_2", "")]

    command.upgrade(config, "head")
    body = summary.summary(
        empty_store, PurposeRegistry(), None, None, daily=False, rotation_days=90
    )
    assert {k: n for k, n in body["status_counts"].items() if n} == {
        "PARTIAL_OPT_IN": 2,
        "NOT_ASKED": 1,
    }
    assert body["coverage"]["analytics"] == {
        "granted": 1,
        "denied": 1,
        "withdrawn": 0,
        "expired": 0,
        "never_asked": 1,
    }
    # Events stored before the upgrade are counted as accepted on the day they were received.
    assert body["events"] == {"accepted": 3, "rejected": {}}
    day = datetime(2026, 11, 20, tzinfo=UTC)
    daily = summary.summary(
        empty_store, PurposeRegistry(), day, day + timedelta(days=1), daily=True, rotation_days=90
    )
    assert daily["series"] == [
        {
            "day": "2026-11-20",
            "events": {"accepted": 2, "rejected": 0},
            "grants": 3,
            "opt_outs": 1,
            "expiries": 0,
        },
        {
            "day": "2026-11-21",
            "events": {"accepted": 1, "rejected": 0},
            "grants": 0,
            "opt_outs": 0,
            "expiries": 0,
        },
    ]
    with empty_store.read() as conn:
        bases = conn.execute(text("SELECT DISTINCT basis FROM subject_status")).scalars().all()
    assert bases != [""]  # computed once, and stored
    assert len(bases) == 1

    command.downgrade(config, "0012")
    command.upgrade(config, "head")
    assert schema_diffs(empty_store) == []
