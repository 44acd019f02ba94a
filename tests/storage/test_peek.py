"""Store.peek: one statement without a transaction on SQLite (the consent check's hot read)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from consentry.storage.engine import Store


def test_peek_reads_what_was_committed_in_a_path_with_odd_characters(tmp_path: Path) -> None:
    folder = tmp_path / "data dir 100% ours"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 'consentry.db'}")
    try:
        with store.write() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert store.peek("SELECT n FROM t", ()) == (1,)
        with store.write() as conn:
            conn.execute(text("UPDATE t SET n = 2"))
        # Each peek is its own statement: it sees the latest commit.
        assert store.peek("SELECT n FROM t", ()) == (2,)
    finally:
        store.close()


def test_peek_is_off_for_an_in_memory_database() -> None:
    store = Store("sqlite://")
    try:
        assert store.peek("SELECT 1", ()) is None
    finally:
        store.close()
