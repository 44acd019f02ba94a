"""storage/hooks.py: the write transaction's before-commit queue, kept in step with
savepoints, and the work run once it has committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, text

from consentry.settings import Settings
from consentry.storage import hooks
from consentry.storage.dialect import database_url, ensure_data_dir
from consentry.storage.engine import Store


class Taker:
    """A before-commit hook that takes the whole queue, as the audit log's flush does."""

    def __init__(self) -> None:
        self.taken: list[list[Any]] = []

    def __call__(self, conn: Connection) -> None:
        queue = hooks.pending(conn)
        self.taken.append(list(queue))
        queue.clear()


@pytest.fixture
def taker() -> Taker:
    return Taker()


@pytest.fixture
def store(settings: Settings, taker: Taker) -> Iterator[Store]:
    ensure_data_dir(settings.data_dir)
    bare = Store(database_url(settings), before_commit=[taker])
    with bare.write() as conn:
        conn.exec_driver_sql("CREATE TABLE hook_rows (k TEXT PRIMARY KEY)")
    taker.taken.clear()
    try:
        yield bare
    finally:
        bare.close()


def keys(store: Store) -> list[str]:
    with store.read() as conn:
        return [str(k) for (k,) in conn.exec_driver_sql("SELECT k FROM hook_rows ORDER BY k")]


def test_a_rolled_back_savepoint_drops_what_it_queued(store: Store, taker: Taker) -> None:
    with store.write() as conn:
        hooks.pending(conn).append("before")
        with conn.begin_nested() as outer:
            hooks.pending(conn).append("kept")
            inner = conn.begin_nested()
            hooks.pending(conn).append("dropped")
            inner.rollback()
            hooks.pending(conn).append("kept too")
            outer.commit()
        rolled = conn.begin_nested()
        hooks.pending(conn).append("dropped with its savepoint")
        with conn.begin_nested():
            hooks.pending(conn).append("dropped inside it")
        rolled.rollback()
        hooks.pending(conn).append("after")
    assert taker.taken == [["before", "kept", "kept too", "after"]]


def test_each_write_starts_with_an_empty_queue(store: Store, taker: Taker) -> None:
    with store.write() as conn:
        hooks.pending(conn).append(1)
    with store.write() as conn:
        assert hooks.pending(conn) == []
    assert taker.taken == [[1], []]


def insert_and_queue(store: Store, key: str) -> None:
    with store.write() as conn:
        conn.execute(text("INSERT INTO hook_rows (k) VALUES (:k)"), {"k": key})
        hooks.pending(conn).append(key)


def test_a_failing_hook_rolls_the_write_back(store: Store, taker: Taker) -> None:
    def fail(conn: Connection) -> None:
        raise RuntimeError("hook refused")

    store.before_commit.append(fail)
    with pytest.raises(RuntimeError, match="hook refused"):
        insert_and_queue(store, "rolled back")
    # The hooks ran after the block, on all it queued.
    assert taker.taken == [["rolled back"]]
    assert keys(store) == []


def test_queued_work_no_hook_takes_is_never_committed_without_it(settings: Settings) -> None:
    ensure_data_dir(settings.data_dir)
    bare = Store(database_url(settings))
    try:
        with bare.write() as conn:
            conn.exec_driver_sql("CREATE TABLE hook_rows (k TEXT PRIMARY KEY)")
        with pytest.raises(RuntimeError, match="no hook"):
            insert_and_queue(bare, "unaudited")
        assert keys(bare) == []
        # The queue left with the failed transaction: the next write commits.
        with bare.write() as conn:
            conn.exec_driver_sql("INSERT INTO hook_rows (k) VALUES ('next')")
        assert keys(bare) == ["next"]
    finally:
        bare.close()


def test_nothing_is_queued_outside_a_write(store: Store) -> None:
    with store.read() as conn:
        with pytest.raises(TypeError):
            hooks.pending(conn)
        with pytest.raises(TypeError):
            hooks.after_commit(conn, "k", lambda: None)


def test_after_commit_work_runs_even_when_its_savepoint_rolled_back(store: Store) -> None:
    """It must read what was committed (the consent cache reloads), so it runs regardless."""
    seen: list[list[str]] = []
    with store.write() as conn:
        conn.exec_driver_sql("INSERT INTO hook_rows (k) VALUES ('committed')")
        savepoint = conn.begin_nested()
        conn.exec_driver_sql("INSERT INTO hook_rows (k) VALUES ('rolled back')")
        hooks.after_commit(conn, "look", lambda: seen.append(keys(store)))
        savepoint.rollback()
        assert seen == []
    assert seen == [["committed"]]


def test_failing_after_commit_work_leaves_the_write_committed(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """After-commit work only warms caches: its failure is logged (by type) and the committed
    write returns normally, so no caller retries what has been done."""
    ran: list[str] = []

    def failing() -> None:
        raise RuntimeError("sub_secret@example.com")

    with store.write() as conn:
        conn.exec_driver_sql("INSERT INTO hook_rows (k) VALUES ('kept')")
        hooks.after_commit(conn, "fails", failing)
        hooks.after_commit(conn, "runs", lambda: ran.append("after"))
    assert keys(store) == ["kept"]
    assert ran == ["after"]
    assert "RuntimeError" in caplog.text
    assert "example.com" not in caplog.text
