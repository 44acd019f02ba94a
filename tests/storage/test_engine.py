"""storage/engine.py: SQLite pragmas, the private data directory, transactions, one writer."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select

from consentry import clock
from consentry.audit import log as audit_log
from consentry.audit.events import AuditAction
from consentry.errors import StorageUnavailable
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage import audit as audit_sql
from consentry.storage import engine as engine_module
from consentry.storage import hooks
from consentry.storage import subjects as subjects_sql
from consentry.storage.dialect import SQLITE_FILE, database_url, ensure_data_dir
from consentry.storage.engine import Store
from consentry.storage.errors import ConstraintViolation
from consentry.storage.schema import identities, subject_keys, subjects
from consentry.storage.schema import metadata as schema_metadata

THREADS = 8
WRITES = 50


def pragma(conn: Connection, name: str) -> Any:
    return conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()


def row_counts(conn: Connection) -> dict[str, int]:
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in schema_metadata.sorted_tables
    }


def in_threads(job: Callable[[int], None], count: int = THREADS) -> list[BaseException]:
    """Run job(0..count-1) in threads released together; return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            job(n)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer never finished"
    return errors


# --- SQLite connections ---------------------------------------------------------------------


def test_sqlite_connections_use_wal_secure_delete_and_foreign_keys(sqlite_runtime: Runtime) -> None:
    store = sqlite_runtime.store
    assert store.dialect == "sqlite"
    for opener in (store.read, store.write):
        with opener() as conn:
            assert pragma(conn, "journal_mode") == "wal"
            assert pragma(conn, "secure_delete") == 1
            assert pragma(conn, "foreign_keys") == 1
            assert pragma(conn, "busy_timeout") == 30000


def test_sqlite_enforces_foreign_keys(sqlite_runtime: Runtime) -> None:
    with pytest.raises(ConstraintViolation), sqlite_runtime.store.write() as conn:
        subjects_sql.insert_identity(
            conn, "sub_000000000000000000000000", "email", b"\x01" * 32, b"ct", clock.now()
        )


def test_deleting_a_subject_cascades_to_its_identities(runtime: Runtime) -> None:
    now = clock.now()
    with runtime.store.write() as conn:
        subjects_sql.insert_subject(conn, "sub_cascade", None, now)
        subjects_sql.insert_identity(conn, "sub_cascade", "email", b"\x02" * 32, b"ct", now)
    with runtime.store.write() as conn:
        conn.execute(subjects.delete().where(subjects.c.subject_id == "sub_cascade"))
    with runtime.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(identities)).scalar_one() == 0


# --- the data directory ---------------------------------------------------------------------


def test_the_data_dir_is_created_0700(tmp_path: Path, sqlite_settings: Settings) -> None:
    nested = tmp_path / "a" / "b" / "data"
    settings = Settings(
        data_dir=nested, admin_key=sqlite_settings.admin_key, master_key=sqlite_settings.master_key
    )
    rt = Runtime(settings)
    try:
        assert stat.S_IMODE(nested.stat().st_mode) == 0o700
        assert (nested / SQLITE_FILE).is_file()
    finally:
        rt.close()


def test_an_existing_data_dir_is_narrowed_to_0700(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    ensure_data_dir(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


# --- transactions ---------------------------------------------------------------------------


def write_then_fail(store: Store) -> None:
    """Insert a subject, its key and three audit indexes, then fail."""
    with store.write() as conn:
        now = clock.now()
        subjects_sql.insert_subject(conn, "sub_rolled_back", "UK", now)
        conn.execute(
            insert(subject_keys).values(
                subject_id="sub_rolled_back", wrapped_key=b"k", kek_id="k", created_at=now
            )
        )
        first = audit_sql.reserve_indexes(conn, 3)
        raise RuntimeError(f"failed half-way, index {first}")


def test_a_failed_write_leaves_nothing_behind(runtime: Runtime) -> None:
    store = runtime.store
    with store.read() as conn:
        before = row_counts(conn)
        size = audit_sql.log_size(conn)
    with pytest.raises(RuntimeError, match=f"half-way, index {size}"):
        write_then_fail(store)
    with store.read() as conn:
        assert row_counts(conn) == before
        assert audit_sql.log_size(conn) == size
        assert subjects_sql.get_subject(conn, "sub_rolled_back") is None
    # The writer slot was released: the next write goes through.
    with store.write() as conn:
        assert audit_sql.reserve_indexes(conn, 1) == size


def test_a_write_commits_when_the_block_ends(runtime: Runtime) -> None:
    with runtime.store.write() as conn:
        subjects_sql.insert_subject(conn, "sub_committed", None, clock.now())
    with runtime.store.read() as conn:
        assert subjects_sql.get_subject(conn, "sub_committed") is not None


def test_after_commit_work_runs_once_committed_and_never_after_a_rollback(
    runtime: Runtime,
) -> None:
    store = runtime.store
    seen: list[tuple[str, bool]] = []

    def committed(subject_id: str) -> Callable[[], None]:
        def look() -> None:
            with store.read() as conn:
                seen.append((subject_id, subjects_sql.get_subject(conn, subject_id) is not None))

        return look

    with store.write() as conn:
        subjects_sql.insert_subject(conn, "sub_after", None, clock.now())
        hooks.after_commit(conn, "sub_after", committed("sub_after"))
        # Queued again under the same key: runs once.
        hooks.after_commit(conn, "sub_after", committed("sub_after"))
        assert seen == []
    assert seen == [("sub_after", True)]

    def insert_then_fail() -> None:
        with store.write() as conn:
            subjects_sql.insert_subject(conn, "sub_after_gone", None, clock.now())
            hooks.after_commit(conn, "sub_after_gone", committed("sub_after_gone"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        insert_then_fail()
    assert seen == [("sub_after", True)]
    with store.read() as conn, pytest.raises(TypeError):
        hooks.after_commit(conn, "read", committed("sub_after"))


def create_and_audit(store: Store, subject_id: str) -> None:
    with store.write() as conn:
        subjects_sql.insert_subject(conn, subject_id, None, clock.now())
        audit_log.record(conn, AuditAction.SUBJECT_CREATED, actor="test")


def test_only_the_runtime_registers_the_audit_hook(sqlite_runtime: Runtime) -> None:
    """Importing the audit log registers nothing in storage: a Store built without the hook
    refuses to commit queued audit work rather than drop it (an action without its entry)."""
    assert sqlite_runtime.store.before_commit == [audit_log.flush]
    bare = Store(sqlite_runtime.store.url)
    try:
        assert bare.before_commit == []
        with pytest.raises(RuntimeError, match="no hook"):
            create_and_audit(bare, "sub_unaudited")
    finally:
        bare.close()
    with sqlite_runtime.store.read() as conn:
        assert subjects_sql.get_subject(conn, "sub_unaudited") is None


def test_concurrent_read_modify_writes_lose_nothing(runtime: Runtime) -> None:
    store = runtime.store
    with store.read() as conn:
        start = audit_sql.log_size(conn)
    taken: list[int] = []
    lock = threading.Lock()

    def job(_n: int) -> None:
        for _ in range(WRITES):
            with store.write() as conn:
                first = audit_sql.reserve_indexes(conn, 1)
            with lock:
                taken.append(first)

    errors = in_threads(job)
    assert errors == []
    assert sorted(taken) == list(range(start, start + THREADS * WRITES))
    with store.read() as conn:
        assert audit_sql.log_size(conn) == start + 400


def test_sqlite_writers_in_two_stores_serialise(sqlite_runtime: Runtime) -> None:
    """Two Stores on one file stand for two processes: BEGIN IMMEDIATE and the busy timeout,
    not the in-process lock, keep a read-then-update correct and free of 'database is locked'."""
    url = sqlite_runtime.store.url
    stores = [Store(url), Store(url)]
    taken: list[tuple[int, int]] = []
    lock = threading.Lock()

    def job(n: int) -> None:
        store = stores[n % 2]
        for _ in range(WRITES):
            with store.write() as conn:
                seen = audit_sql.log_size(conn)
                first = audit_sql.reserve_indexes(conn, 1)
            with lock:
                taken.append((seen, first))

    try:
        errors = in_threads(job)
    finally:
        for store in stores:
            store.close()
    assert [e for e in errors if "locked" in str(e)] == []
    assert errors == []
    # Each transaction saw the counter as it was when it updated it: no interleaving.
    assert all(seen == first for seen, first in taken)
    assert sorted(first for _, first in taken) == list(range(THREADS * WRITES))
    with sqlite_runtime.store.read() as conn:
        assert audit_sql.log_size(conn) == THREADS * WRITES


def test_readers_do_not_wait_for_the_writer(sqlite_runtime: Runtime) -> None:
    store = sqlite_runtime.store
    with store.write() as conn:
        audit_sql.reserve_indexes(conn, 5)
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(read_size(store)))
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive()
        # The reader saw the last committed state, not the open transaction.
        assert seen == [0]
    assert read_size(store) == 5


def size_in_the_file(store: Store, expected: int) -> int:
    """The audit log's size as the database file alone holds it (immutable=1 reads no WAL),
    once it is `expected` or after 5 seconds."""
    path = Path(str(store.url).removeprefix("sqlite:///"))
    deadline = time.monotonic() + 5
    size = -1
    while time.monotonic() < deadline and size != expected:
        time.sleep(0.05)
        direct = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            size = direct.execute("SELECT size FROM audit_state WHERE id = 1").fetchone()[0]
        finally:
            direct.close()
    return int(size)


def test_commits_leave_the_checkpoint_to_the_stores_thread(sqlite_runtime: Runtime) -> None:
    """No commit copies the WAL into the file (SQLite's automatic checkpoint is off): the
    Store's own thread does, soon after a write, however small."""
    store = sqlite_runtime.store
    with store.write() as conn:
        assert pragma(conn, "wal_autocheckpoint") == 0
        first = audit_sql.reserve_indexes(conn, 7)
    assert size_in_the_file(store, first + 7) == first + 7


def test_the_checkpoint_thread_outlives_a_failed_pass(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that fails (here: the writers held elsewhere past the timeout) is logged and
    tried again; the thread goes on checkpointing."""
    store = sqlite_runtime.store
    real = engine_module._Checkpointer._pass
    calls: list[int] = []

    def failing_once(self: Any, conn: sqlite3.Connection, page: int) -> float:
        calls.append(1)
        if len(calls) == 1:
            raise StorageUnavailable("the database is busy: another writer holds it")
        return float(real(self, conn, page))

    monkeypatch.setattr(engine_module._Checkpointer, "_pass", failing_once)
    with store.write() as conn:
        audit_sql.reserve_indexes(conn, 1)
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    with store.write() as conn:
        last = audit_sql.reserve_indexes(conn, 1) + 1
    assert size_in_the_file(store, last) == last
    assert len(calls) >= 2


def test_the_wal_stays_bounded_under_writes_that_never_pause(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PASSIVE checkpoint never finds the WAL wholly copied while writes go on without a
    pause, so SQLite never starts it over: the checkpoint thread restarts it once it holds
    more than its limit, and the file stops growing."""
    monkeypatch.setattr(engine_module._Checkpointer, "WAL_LIMIT", 1024 * 1024)
    store = sqlite_runtime.store
    wal = Path(str(store.url).removeprefix("sqlite:///") + "-wal")
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (n INTEGER PRIMARY KEY, v BLOB)")
    chunk = os.urandom(16 * 1024)
    sizes = []
    # Written by volume, not for a time: a loaded machine writes more slowly, not less.
    volume = 160 * 1024 * 1024
    deadline = time.monotonic() + 120
    while len(sizes) * len(chunk) * 4 < volume and time.monotonic() < deadline:
        with store.write() as conn:
            conn.exec_driver_sql("DELETE FROM scratch")
            conn.exec_driver_sql("INSERT INTO scratch (v) VALUES (?)", [(chunk,)] * 4)
        sizes.append(wal.stat().st_size)
    # Started over again and again: the file no larger than the limit and what a pass
    # interval's writes add (a WAL never started over would hold all 160 MiB).
    assert len(sizes) * len(chunk) * 4 >= volume
    assert max(sizes) < 128 * 1024 * 1024


def test_a_writer_of_another_process_is_waited_for(
    sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers of all processes take the lock file beside the database before BEGIN
    IMMEDIATE: a write waits while another process holds it, starts within milliseconds of
    its release (SQLite's busy handler sleeps up to 100 ms between tries), and gives up with
    StorageUnavailable after the timeout."""
    store = sqlite_runtime.store
    lock_path = str(store.url).removeprefix("sqlite:///") + "-writer"
    other = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)
    started = threading.Event()
    done: list[float] = []

    def write() -> None:
        started.set()
        with store.write() as conn:
            audit_sql.reserve_indexes(conn, 1)
        done.append(time.monotonic())

    try:
        writer = threading.Thread(target=write)
        writer.start()
        started.wait(5)
        time.sleep(0.3)
        assert done == []
        released = time.monotonic()
        fcntl.flock(other, fcntl.LOCK_UN)
        writer.join(timeout=5)
        assert done
        assert done[0] - released < 0.1
        fcntl.flock(other, fcntl.LOCK_EX)
        monkeypatch.setattr(engine_module._WriterLock, "TIMEOUT", 0.2)
        with pytest.raises(StorageUnavailable), store.write():
            pass
    finally:
        os.close(other)


def write_once(store: Store) -> None:
    with store.write() as conn:
        conn.exec_driver_sql("SELECT 1")


def test_a_writer_waiting_in_a_thread_or_another_process_is_seen(
    sqlite_runtime: Runtime,
) -> None:
    """`writer_wanted()` is true while a writer waits for the writer's place, in a thread of
    this process (for the in-process lock) or in another process (polling the lock file),
    and false once nobody waits: a long series of transactions pauses only then."""
    store = sqlite_runtime.store
    assert store.writer_wanted() is False
    lock_path = str(store.url).removeprefix("sqlite:///") + "-writer"
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write():
            started.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert started.wait(5)
        assert store.writer_wanted() is False
        waiter = threading.Thread(target=write_once, args=(store,))
        waiter.start()
        deadline = time.monotonic() + 5
        while not store.writer_wanted() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert store.writer_wanted() is True
    finally:
        release.set()
        holder.join(5)
    waiter.join(5)
    assert store.writer_wanted() is False
    # Another process's writer (its own Store) waiting on the lock file held here.
    other = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)
    second = Store(store.url)
    try:
        thread = threading.Thread(target=write_once, args=(second,))
        thread.start()
        deadline = time.monotonic() + 5
        while not store.writer_wanted() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert store.writer_wanted() is True
        fcntl.flock(other, fcntl.LOCK_UN)
        thread.join(5)
        assert store.writer_wanted() is False
    finally:
        os.close(other)
        second.close()


def read_size(store: Store) -> int:
    with store.read() as conn:
        return audit_sql.log_size(conn)


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db", "expected"),
    [
        (
            "postgresql://app:secret@db.example.com:5432/consentry",
            "postgresql+psycopg://app:secret@db.example.com:5432/consentry",
        ),
        ("postgresql://localhost/consentry", "postgresql+psycopg://localhost/consentry"),
        ("postgresql+psycopg://app@db.example.com/c", "postgresql+psycopg://app@db.example.com/c"),
        ("sqlite:////var/lib/consentry/other.db", "sqlite:////var/lib/consentry/other.db"),
    ],
)
def test_database_url(db: str, expected: str, tmp_path: Path) -> None:
    assert database_url(Settings(data_dir=tmp_path, db=db)) == expected


def test_database_url_defaults_to_a_file_in_the_data_dir(tmp_path: Path) -> None:
    assert (
        database_url(Settings(data_dir=tmp_path / "d"))
        == f"sqlite:///{tmp_path / 'd' / SQLITE_FILE}"
    )


def test_the_test_cluster_is_reached_through_psycopg(pg_url: str) -> None:
    store = Store(database_url(Settings(db=f"{pg_url}/postgres")))
    try:
        assert store.dialect == "postgresql"
        assert store.engine.dialect.driver == "psycopg"
        store.ping()
    finally:
        store.close()


def test_an_unreachable_database_is_storage_unavailable() -> None:
    store = Store("postgresql+psycopg://consentry@127.0.0.1:1/consentry?connect_timeout=2")
    try:
        with pytest.raises(StorageUnavailable):
            store.ping()
    finally:
        store.close()


def test_writing_is_this_threads_open_write_transaction(runtime: Runtime) -> None:
    """Store.writing(): what the stream's committing hook writes its marks and recipients
    through (the batch's own transaction), None outside one and in other threads."""
    store = runtime.store
    assert store.writing() is None
    seen: list[object] = []
    with store.write() as conn:
        assert store.writing() is conn
        other = threading.Thread(target=lambda: seen.append(store.writing()))
        other.start()
        other.join()
        with store.read():
            assert store.writing() is conn
    assert seen == [None]
    assert store.writing() is None
    with pytest.raises(RuntimeError), store.write():
        raise RuntimeError("rolled back")
    assert store.writing() is None
