"""A subject's events are read through the index grouped by age (schema.of_subject): every
read by subject finds exactly the subject's events, in seq order, across groups, and the
store searches the index for them rather than scanning the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text

from consentry.storage import ingest as sql
from consentry.storage.engine import Store
from consentry.storage.erasure import delete_subject_data
from consentry.storage.schema import SEQ_GROUP_BITS, events, of_subject

GROUP = 1 << SEQ_GROUP_BITS
AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
SUBJECTS = ("sub_alpha", "sub_beta", "sub_gamma")
# Seqs in five groups, some groups skipped, the first and last seq of a group among them.
SEQS = [3, 17, GROUP - 1, GROUP, 2 * GROUP + 5, 4 * GROUP, 4 * GROUP + 9, 6 * GROUP - 1]


def row(seq: int, subject_id: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "event_id": f"evt-{seq}",
        "event_type": "page_view",
        "schema_version": 1,
        "occurred_at": AT,
        "received_at": AT,
        "subject_id": subject_id,
        "purposes": '["analytics"]' if seq % 2 else '["personalization"]',
        "properties": "{}",
    }


def fill(store: Store) -> dict[str, list[int]]:
    """Each seq's event for one of the subjects, in turn: subject -> its seqs."""
    owned: dict[str, list[int]] = {s: [] for s in SUBJECTS}
    rows = []
    for n, seq in enumerate(SEQS):
        for k, subject_id in enumerate(SUBJECTS):
            if (n + k) % 3 != 2:
                rows.append(row(seq * 3 + k, subject_id))
                owned[subject_id].append(seq * 3 + k)
    with store.write() as conn:
        conn.execute(insert(events), rows)
    return owned


def test_each_read_finds_exactly_the_subjects_events_in_order(store: Store) -> None:
    owned = fill(store)
    with store.read() as conn:
        for subject_id, seqs in owned.items():
            paged, after = [], 0
            while page := sql.access_event_rows(conn, subject_id, after_seq=after, limit=2):
                paged += [r.seq for r in page]
                after = page[-1].seq
            assert paged == seqs
            analytics = sql.events_with_purpose(
                conn, subject_id, "analytics", after_seq=seqs[1], limit=100
            )
            assert [r.seq for r in analytics] == [
                s for s in seqs[2:] if "analytics" in row(s, subject_id)["purposes"]
            ]
            kinds = {tuple(r) for r in sql.event_kinds(conn, subject_id)}
            assert kinds == {("page_view", row(s, subject_id)["purposes"]) for s in seqs}
        assert sql.access_event_rows(conn, "sub_nobody", after_seq=0, limit=10) == []
    with store.write() as conn:
        assert delete_subject_data(conn, "sub_beta")["events"] == len(owned["sub_beta"])
    with store.read() as conn:
        left = conn.execute(select(events.c.subject_id).distinct()).scalars().all()
    assert sorted(left) == ["sub_alpha", "sub_gamma"]


def test_an_empty_table_reads_nothing(store: Store) -> None:
    with store.read() as conn:
        assert sql.access_event_rows(conn, "sub_alpha", after_seq=0, limit=10) == []
        assert list(sql.event_kinds(conn, "sub_alpha")) == []


def plan(conn: Connection, statement: Any) -> str:
    compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        return " | ".join(str(r[-1]) for r in rows)
    # The planner would scan a table this small: ask for what it does with the index.
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    return " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}").all())


def test_reads_by_subject_search_the_grouped_index(store: Store) -> None:
    fill(store)
    statements = [
        select(events.c.seq).where(of_subject("sub_alpha", after_seq=5)).order_by(events.c.seq),
        select(events.c.event_type).where(of_subject("sub_alpha")).distinct(),
        delete(events).where(of_subject("sub_alpha")),
    ]
    with store.write() as conn:
        for statement in statements:
            found = plan(conn, statement)
            assert "ix_events_subject_groups" in found, found
            assert "SCAN events" not in found, found
            assert "Seq Scan on events" not in found, found
        conn.rollback()
