"""Commit hooks: the write transaction's queue of work for its before-commit hooks (the audit
log's appends), kept in step with savepoints, and the work run once it has committed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event

_PENDING = "consentry.pending"
_SAVEPOINTS = "consentry.savepoints"
_AFTER = "consentry.after_commit"

W = TypeVar("W", bound=Callable[[], None])


def pending(conn: Connection) -> list[Any]:
    """The write transaction's queue for its before-commit hooks (`Store.before_commit`); a
    rolled-back savepoint drops what was queued inside it. Raises TypeError outside a write
    transaction."""
    queue = conn.info.get(_PENDING)
    if queue is None:
        raise TypeError("work queued for commit needs a write transaction (Store.write)")
    return queue  # type: ignore[no-any-return]


def after_commit(conn: Connection, key: object, work: W) -> W:
    """Run `work` once the write transaction has committed, never when it rolls back; work
    queued again under the same `key` runs once: the work queued first under it is returned
    (so a caller may add to it). It runs even when the savepoint it was queued
    in rolled back, so it must read what was committed rather than carry what was written (the
    consent cache: it must never hold a state a rolled-back transaction produced). Raises
    TypeError outside a write transaction."""
    queue = conn.info.get(_AFTER)
    if queue is None:
        raise TypeError("work queued after commit needs a write transaction (Store.write)")
    return queue.setdefault(key, work)  # type: ignore[no-any-return]


def queued(
    conn: Connection,
    hooks: Sequence[Callable[[Connection], None]],
    after: dict[object, Callable[[], None]],
) -> Iterator[Connection]:
    """Yields `conn` with an empty queue, then runs the hooks, which must take all of it;
    `after` collects the after-commit work (the caller runs it once committed)."""
    conn.info[_PENDING] = []
    conn.info[_SAVEPOINTS] = []
    # The caller's own dict: `conn.info` belongs to the pooled connection and is cleared here.
    conn.info[_AFTER] = after
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
        conn.info.pop(_AFTER, None)


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
