"""Reaching the database: its URL, each dialect's engine set-up, and statements spelled
for each driver's parameter style."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from consentry.settings import Settings
from consentry.storage.errors import translate
from consentry.storage.hooks import track_savepoints

SQLITE_FILE = "consentry.db"


# The parameter markers of the drivers: sqlite3 (qmark), psycopg (format, pyformat).
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def driver_statements(template: str) -> dict[str, str]:
    """A statement sent straight to the driver (hot paths skip SQLAlchemy's compilation),
    spelled for each paramstyle: `{p}` marks a parameter. Templates are constants; values
    always travel as parameters."""
    return {style: template.replace("{p}", marker) for style, marker in _MARKERS.items()}


def insert_statements(table: str, columns: Sequence[str], tail: str = "") -> dict[str, str]:
    """`INSERT INTO table (columns) VALUES (...)` for each paramstyle, rows as tuples."""
    marks = ", ".join(["{p}"] * len(columns))
    # Table and column names are the callers' constants.
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"  # noqa: S608
    return driver_statements(statement)


def driver_in(conn: Connection, head: str, values: list[str], tail: str = "") -> Sequence[Any]:
    """`head IN (values)tail`, without SQLAlchemy's statement compilation (per batch, a
    statement with a thousand parameters costs more to compile than to run)."""
    if conn.dialect.paramstyle == "qmark":
        sql = f"{head} IN ({','.join('?' * len(values))}){tail}"
        return conn.exec_driver_sql(sql, tuple(values)).all()
    return conn.exec_driver_sql(f"{head} = ANY(%s){tail}", (values,)).all()


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


def create_store_engine(url: str, dialect: str) -> Engine:
    """The engine for `dialect`: pooled PostgreSQL, or SQLite with its pragmas and BEGIN
    IMMEDIATE for writes; both translate driver errors and track savepoints."""
    if dialect == "postgresql":
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        track_savepoints(engine)
        event.listen(engine, "handle_error", translate)
        return engine
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    track_savepoints(engine)
    event.listen(engine, "handle_error", translate)

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
            "cache_size=-65536",
            # Checkpoints run in the Store's own thread (_Checkpointer), not in commits.
            "wal_autocheckpoint=0",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("consentry_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
