"""How reads meet the store (SQLite's query plans): pages and scans that fetch whole rows walk
the table in storage order, never the reads index, whose order is not seq (a page of a common
event type then sorted all of its events, every time); counts keep the covering index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from consentry.runtime import Runtime
from consentry.storage import reads as sql

FILTERS = sql.Filters("analytics", 0, event_type="page_view", start="2026-11-01T00:00:00Z")


def plan(conn: Connection, statement: str, params: dict[str, Any]) -> str:
    rows = conn.execute(text("EXPLAIN QUERY PLAN " + statement), params).all()
    return " | ".join(str(row[-1]) for row in rows)


def test_pages_and_scans_walk_the_table_in_storage_order(sqlite_runtime: Runtime) -> None:
    with sqlite_runtime.store.read() as conn:
        statement, params = sql.page_statement(conn, FILTERS, {7}, 0, 10)
        page = plan(conn, statement, params)
        where, params = sql.where_clause(conn, FILTERS, {7}, rows=True)
        scan = plan(conn, f"SELECT sealed FROM events WHERE {where}", params)  # noqa: S608
    for found in (page, scan):
        assert "ix_events_reads" not in found, found
        assert "TEMP B-TREE" not in found, found


def test_counts_keep_the_reads_index(sqlite_runtime: Runtime) -> None:
    with sqlite_runtime.store.read() as conn:
        where, params = sql.where_clause(conn, FILTERS, {7})
        found = plan(conn, f"SELECT COUNT(*) FROM events WHERE {where}", params)  # noqa: S608
    assert "ix_events_reads" in found, found


def changes(conn: Connection) -> int:
    return int(conn.connection.driver_connection.total_changes)  # type: ignore[union-attr]


def test_a_set_of_excluded_keys_is_loaded_once_per_connection(sqlite_runtime: Runtime) -> None:
    """The chunks of a download leave out the same subjects: SQLite loads them once, and
    again for another set, or after a rollback took the loaded set away."""
    first, second = sql.KeySet({7, 8, 9}), sql.KeySet({7, 8, 9})
    with sqlite_runtime.store.read() as conn:
        sql.where_clause(conn, FILTERS, first)
        before = changes(conn)
        sql.where_clause(conn, FILTERS, first)
        assert changes(conn) == before
        sql.where_clause(conn, FILTERS, second)
        assert changes(conn) > before
        loaded = conn.execute(text("SELECT subject_key FROM temp.reads_excluded")).scalars()
        assert sorted(loaded) == [7, 8, 9]
    store = sqlite_runtime.store
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            sql.where_clause(conn, FILTERS, first)
            tx.rollback()
        with conn.begin():
            before = changes(conn)
            sql.where_clause(conn, FILTERS, first)
            assert changes(conn) > before
            loaded = conn.execute(text("SELECT subject_key FROM temp.reads_excluded")).scalars()
            assert sorted(loaded) == [7, 8, 9]
