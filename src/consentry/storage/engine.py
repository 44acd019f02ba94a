"""The Store: one engine per process, SQLite (WAL, secure_delete, one writer) or PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, Row, create_engine, event, text
from sqlalchemy.exc import OperationalError

from consentry.errors import StorageUnavailable
from consentry.settings import Settings

SQLITE_FILE = "consentry.db"

# A result row of any width: columns are read by name.
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL for the configured database (psycopg 3 for PostgreSQL)."""
    if not settings.db:
        return f"sqlite:///{settings.data_dir / SQLITE_FILE}"
    if settings.db.startswith("postgresql://"):
        return "postgresql+psycopg://" + settings.db.removeprefix("postgresql://")
    return settings.db


def ensure_data_dir(path: Path) -> None:
    """Create the data directory readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


class Store:
    """Opens connections; `write()` is a transaction that may change data, `read()` one that won't.

    SQLite allows one writer: writes in this process queue on a lock and open with
    BEGIN IMMEDIATE, so they never fail half-way on a busy database.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.engine = _create_engine(url, self.dialect)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back on any exception."""
        if self._write_lock is None:
            with self._connect() as conn, conn.begin():
                yield conn
            return
        with self._write_lock, self._connect(immediate=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (on SQLite WAL, readers never wait for the writer)."""
        with self._connect() as conn, conn.begin():
            yield conn

    def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connect(self, *, immediate: bool = False) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StorageUnavailable("the database cannot be reached") from exc
        try:
            if immediate:
                conn = conn.execution_options(consentry_immediate=True)
            yield conn
        finally:
            conn.close()


def _create_engine(url: str, dialect: str) -> Engine:
    if dialect == "postgresql":
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            # Deleted personal data is overwritten, not left in free pages.
            "secure_delete=ON",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("consentry_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
