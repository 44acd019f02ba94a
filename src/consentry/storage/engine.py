"""The Store: one engine per process, SQLite (WAL, secure_delete, one writer) or PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeAlias
from urllib.parse import quote

from sqlalchemy import Connection, Row, make_url, text
from sqlalchemy.exc import OperationalError

from consentry.errors import StorageUnavailable
from consentry.storage.dialect import create_store_engine
from consentry.storage.errors import OperationalFailure
from consentry.storage.hooks import queued

log = logging.getLogger(__name__)

# A result row of any width: columns are read by name.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


class Store:
    """Opens connections; `write()` is a transaction that may change data, `read()` one that won't.

    SQLite allows one writer: writes in this process queue on a lock and open with
    BEGIN IMMEDIATE, so they never fail half-way on a busy database.
    """

    def __init__(
        self, url: str, *, before_commit: Sequence[Callable[[Connection], None]] = ()
    ) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        # Threads of this process waiting for _write_lock (writer_wanted).
        self._waiting = 0
        self._counting = threading.Lock()
        self.engine = create_store_engine(url, self.dialect)
        # Work each write transaction runs last, just before it commits (the audit log's
        # appends, registered by runtime.py): taking the log's lock last keeps every
        # transaction's lock order the same, so none deadlock.
        self.before_commit = list(before_commit)
        database = make_url(url).database if self.dialect == "sqlite" else None
        # A file to read without a transaction (not an in-memory database).
        self._peek_path = database if database and database != ":memory:" else None
        self._peekers = threading.local()
        # This thread's open write transaction (`writing`).
        self._writing = threading.local()
        self._peek_connections: list[sqlite3.Connection] = []
        self._peek_lock = threading.Lock()
        self._writer = _WriterLock(self._peek_path + "-writer") if self._peek_path else None
        self._checkpointer = (
            _Checkpointer(self._peek_path, self._writers_held) if self._peek_path else None
        )

    def peek(self, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        """SQLite: one row of one statement on this thread's own read-only connection, with
        no transaction around it (a statement reads one snapshot), for the hottest reads.
        None on PostgreSQL: callers use read()."""
        if self._peek_path is None:
            return None
        conn = getattr(self._peekers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"file:{quote(self._peek_path)}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA busy_timeout=30000")
            self._peekers.conn = conn
            with self._peek_lock:
                self._peek_connections.append(conn)
        try:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable("the database cannot be read") from exc
        return row

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back on any exception;
        the before-commit hooks run inside it, last; the after-commit work (`after_commit`)
        once it has committed, outside it."""
        after: dict[object, Callable[[], None]] = {}
        if self._write_lock is None:
            with self._connect() as conn, conn.begin():
                yield from self._held(conn, after)
        else:
            if self._checkpointer is not None:
                self._checkpointer.turn.wait(_TURN_WAIT)
            with self._writers_held(), self._connect(immediate=True) as conn, conn.begin():
                yield from self._held(conn, after)
            if self._checkpointer is not None:
                self._checkpointer.wrote()
        for work in after.values():
            try:
                work()
            except Exception as exc:
                # After-commit work only warms (the consent cache, which the version rule
                # corrects at its next read): its failure must not turn a committed write
                # into an error the caller would retry. Types only: no value is logged.
                log.error(
                    "after-commit work %s failed: %s", type(work).__name__, type(exc).__name__
                )

    def _held(
        self, conn: Connection, after: dict[object, Callable[[], None]]
    ) -> Iterator[Connection]:
        outer = getattr(self._writing, "conn", None)
        self._writing.conn = conn
        try:
            yield from queued(conn, self.before_commit, after)
        finally:
            self._writing.conn = outer

    def writing(self) -> Connection | None:
        """The connection of this thread's open write transaction, None outside one: for work
        called from inside a transaction by code that does not pass the connection on (the
        stream's `committing` hook of the ingest pipeline)."""
        conn: Connection | None = getattr(self._writing, "conn", None)
        return conn

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction (on SQLite WAL, readers never wait for the writer). SQLite reads
        one snapshot throughout; `snapshot` asks PostgreSQL for the same (REPEATABLE READ),
        for reads whose statements must agree with each other."""
        with self._connect() as raw:
            conn = raw
            if snapshot and self.dialect == "postgresql":
                conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file and truncate it, so content deleted
        (and overwritten: secure_delete) leaves no older page image in the WAL. Runs outside
        any transaction. PostgreSQL reclaims dead rows by (auto)vacuum."""
        if self.dialect != "sqlite":
            return
        copying = self._checkpointer.copying if self._checkpointer else contextlib.nullcontext()
        # Not beside this process's checkpoint thread (a checkpoint already running makes
        # another one give up at once); another process's may be running: tried again.
        for attempt in range(_CHECKPOINT_ATTEMPTS):
            with copying, self._writers_held():
                raw = self.engine.raw_connection()
                try:
                    cursor = raw.cursor()
                    busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    cursor.close()
                finally:
                    raw.close()
            if not busy:
                return
            time.sleep(0.05 * (attempt + 1))
        # The WAL keeps older page images until the next truncation.
        log.warning("WAL not truncated: another checkpoint or a reader held it")

    def writer_wanted(self) -> bool:
        """Whether a writer is waiting for the writer's place now, in this process or
        another (SQLite): a long series of transactions leaves the place free a moment
        between two only then. PostgreSQL has no one writer: always True."""
        if self._write_lock is None:
            return True
        if self._waiting:
            return True
        return self._writer is not None and self._writer.wanted()

    @contextmanager
    def _writers_held(self) -> Iterator[None]:
        """SQLite: the writer's place in this process, then across processes."""
        if self._write_lock is None:
            yield
            return
        with self._counting:
            self._waiting += 1
        try:
            self._write_lock.acquire()
        finally:
            with self._counting:
                self._waiting -= 1
        try:
            with self._writer or contextlib.nullcontext():
                yield
        finally:
            self._write_lock.release()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._writer is not None:
            with self._write_lock or contextlib.nullcontext():
                self._writer.close()
        with self._peek_lock:
            for conn in self._peek_connections:
                conn.close()
            self._peek_connections.clear()
        self.engine.dispose()

    @contextmanager
    def _connect(self, *, immediate: bool = False) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except (OperationalError, OperationalFailure) as exc:
            # OperationalFailure: the first connection's own queries (the dialect's set-up)
            # pass through the engine's error translation.
            raise StorageUnavailable("the database cannot be reached") from exc
        try:
            if immediate:
                conn = conn.execution_options(consentry_immediate=True)
            yield conn
        finally:
            conn.close()


class _WriterLock:
    """The database's writer, across processes (`serve --workers`): an flock on a file beside
    the database, taken before BEGIN IMMEDIATE. A process waiting for it retries every
    millisecond, where SQLite's own busy handler sleeps up to 100 ms between tries and leaves
    the file idle meanwhile. Gives up after TIMEOUT seconds (StorageUnavailable).

    While it waits, a process holds a shared flock on a second file (`-waiting`), so that
    `wanted()` tells whether anyone is waiting for the writer."""

    TIMEOUT = 30.0
    _POLL = 0.001

    def __init__(self, path: str) -> None:
        self._path = path
        # The lock file; the waiting file as waiters hold it; the waiting file as `wanted()`
        # tries it (flocks of two descriptors of one process conflict, of one do not).
        self._fds: tuple[int, int, int] | None = None
        self._pid = 0

    def _open(self) -> tuple[int, int, int]:
        if self._fds is None or self._pid != os.getpid():
            # A forked child opens its own: an flock is shared by copies of one descriptor.
            waiting = self._path + "-waiting"
            self._fds = (
                os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600),
                os.open(waiting, os.O_RDWR | os.O_CREAT, 0o600),
                os.open(waiting, os.O_RDWR | os.O_CREAT, 0o600),
            )
            self._pid = os.getpid()
        return self._fds

    def __enter__(self) -> None:
        fd, waiting, _ = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + self.TIMEOUT
        # Threads of one process take the writer one at a time (Store._write_lock), so one
        # descriptor per process serves them.
        fcntl.flock(waiting, fcntl.LOCK_SH)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StorageUnavailable(
                            "the database is busy: another writer holds it"
                        ) from None
                    time.sleep(self._POLL)
        finally:
            fcntl.flock(waiting, fcntl.LOCK_UN)

    def __exit__(self, *exc: object) -> None:
        if self._fds is not None:
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def wanted(self) -> bool:
        """Whether a process (this one included) is waiting for the writer now."""
        _, _, probe = self._open()
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            for fd in self._fds:
                os.close(fd)
        self._fds = None


# Store.checkpoint()'s tries, while another process's checkpoint is running.
_CHECKPOINT_ATTEMPTS = 10
# How long a writer waits for a WAL restart to go first (it goes anyway after that).
_TURN_WAIT = 5.0


class _Checkpointer:
    """Copies the WAL into the database file in a thread of its own (PASSIVE: writers and
    readers go on meanwhile), instead of SQLite's automatic checkpoint, which runs inside the
    commit that crosses its threshold and makes that commit wait for the copy and its fsync.
    Runs while there were writes since its last pass, every INTERVAL seconds.

    Under writes that never pause, a PASSIVE checkpoint never finds the WAL wholly copied, so
    SQLite never starts it over and the file grows without end: once it holds more than
    WAL_LIMIT bytes of frames, the pass also takes the writers' locks for a RESTART checkpoint
    (by then nearly all of it is copied, so writers wait a few milliseconds), after which the
    next writer starts the file over. The file is not truncated there (that took 55-90 ms);
    Store.checkpoint() truncates it after deletions."""

    INTERVAL = 0.1
    WAL_LIMIT = 64 * 1024 * 1024

    def __init__(self, path: str, writers_held: Callable[[], AbstractContextManager[None]]) -> None:
        self._path = path
        self._writers_held = writers_held
        # Cleared while a restart waits for the writers: new writers of this process let
        # it go first (a lock taken again and again by one thread is never fair).
        self.turn = threading.Event()
        self.turn.set()
        # Held while this process checkpoints (the thread, or Store.checkpoint()).
        self.copying = threading.Lock()
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def wrote(self) -> None:
        self._dirty.set()
        # Started at the first write of each process (a forked child has no thread of ours),
        # and again should it ever have stopped.
        if self._pid != os.getpid() or not self._alive():
            with self._lock:
                if (self._pid != os.getpid() or not self._alive()) and not self._stopped.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="consentry-checkpoint", daemon=True
                    )
                    self._thread.start()
                    self._pid = os.getpid()

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stopped.set()
        self._dirty.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            # A restart waits this long at most for readers, holding the writers meanwhile.
            conn.execute("PRAGMA busy_timeout=200")
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            while not self._stopped.is_set():
                self._dirty.wait()
                self._dirty.clear()
                try:
                    with self.copying:
                        pause = self._pass(conn, page)
                except Exception as exc:
                    # Busy (another process checkpoints, a writer held the file too long) or
                    # gone: the next pass tries again. The type only.
                    log.warning("WAL checkpoint failed: %s", type(exc).__name__)
                    pause = 1.0
                self._stopped.wait(pause)
        finally:
            conn.close()

    def _pass(self, conn: sqlite3.Connection, page: int) -> float:
        """One PASSIVE checkpoint, and the restart when it is due; the pause before the next
        pass (longer after a restart that readers held up)."""
        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        # Not while the copy itself is held up: holding the writers would then be long.
        if busy or frames * page <= self.WAL_LIMIT:
            return self.INTERVAL
        self.turn.clear()
        try:
            with self._writers_held():
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            self.turn.set()
        return 1.0 if busy else self.INTERVAL
