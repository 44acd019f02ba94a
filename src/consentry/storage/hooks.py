"""Before-commit hooks: the write transaction's queue of work for its hooks (the audit
log's appends), kept in step with savepoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event

_PENDING = "consentry.pending"
_SAVEPOINTS = "consentry.savepoints"


def pending(conn: Connection) -> list[Any]:
    """The write transaction's queue for its before-commit hooks (`Store.before_commit`); a
    rolled-back savepoint drops what was queued inside it. Raises TypeError outside a write
    transaction."""
    queue = conn.info.get(_PENDING)
    if queue is None:
        raise TypeError("work queued for commit needs a write transaction (Store.write)")
    return queue  # type: ignore[no-any-return]


def queued(conn: Connection, hooks: Sequence[Callable[[Connection], None]]) -> Iterator[Connection]:
    """Yields `conn` with an empty queue, then runs the hooks, which must take all of it."""
    conn.info[_PENDING] = []
    conn.info[_SAVEPOINTS] = []
    try:
        yield conn
        for hook in hooks:
            hook(conn)
        if conn.info[_PENDING]:
            # Committing would drop the queued work (an action without its audit entry).
            raise RuntimeError("work was queued for commit but no hook of this Store takes it")
    finally:
        conn.info.pop(_PENDING, None)
        conn.info.pop(_SAVEPOINTS, None)


def track_savepoints(engine: Engine) -> None:
    """Keep the queue in step with savepoints: a rolled-back one drops what it queued."""

    @event.listens_for(engine, "savepoint")
    def _on_savepoint(conn: Connection, _name: str) -> None:
        if _PENDING in conn.info:
            conn.info[_SAVEPOINTS].append(len(conn.info[_PENDING]))

    @event.listens_for(engine, "rollback_savepoint")
    def _on_rollback(conn: Connection, _name: str, _context: Any) -> None:
        if _PENDING in conn.info and conn.info[_SAVEPOINTS]:
            del conn.info[_PENDING][conn.info[_SAVEPOINTS].pop() :]

    @event.listens_for(engine, "release_savepoint")
    def _on_release(conn: Connection, _name: str, _context: Any) -> None:
        if _PENDING in conn.info and conn.info[_SAVEPOINTS]:
            conn.info[_SAVEPOINTS].pop()
