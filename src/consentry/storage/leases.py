"""Job leases: which process runs a pass of a background job now, across every process and
machine on one database. A lease is a row (job name, holder, expiry by the database's clock);
its holder renews it while the pass runs and deletes it when the pass ends; a holder that dies
leaves it to expire, and the next process to ask takes it then."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from consentry.storage.dialect import driver_statements
from consentry.storage.engine import Store

log = logging.getLogger(__name__)

# Seconds since the epoch by the database's clock (one clock for every machine on PostgreSQL;
# SQLite's is the one machine's).
_NOW = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "extract(epoch FROM clock_timestamp())::float8",
}
# Taken when nobody holds it, it has expired, or this holder holds it already (a renewal): one
# statement, so two processes asking at once cannot both succeed (the row's lock decides).
_TAKE = (
    "INSERT INTO job_leases (name, holder, expires_at) VALUES ({{p}}, {{p}}, {now} + {{p}})"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
    " expires_at = excluded.expires_at"
    " WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= {now}"
    " RETURNING holder"
)
_TAKES = {dialect: driver_statements(_TAKE.format(now=now)) for dialect, now in _NOW.items()}
_RELEASE = driver_statements("DELETE FROM job_leases WHERE name = {p} AND holder = {p}")
_HOLDERS = {
    dialect: f"SELECT name, holder, expires_at - {now} FROM job_leases ORDER BY name"  # noqa: S608
    for dialect, now in _NOW.items()
}


def take(conn: Connection, name: str, holder: str, seconds: float) -> bool:
    """Whether `holder` holds the lease `name` for the next `seconds` (taken or renewed)."""
    sql = _TAKES[conn.dialect.name][conn.dialect.paramstyle]
    return conn.exec_driver_sql(sql, (name, holder, seconds)).first() is not None


def release(conn: Connection, name: str, holder: str) -> None:
    """Give the lease up, if `holder` still holds it."""
    conn.exec_driver_sql(_RELEASE[conn.dialect.paramstyle], (name, holder))


def holders(conn: Connection) -> list[tuple[str, str, float]]:
    """Every lease row: (job name, holder, seconds left; below 0 once expired)."""
    rows = conn.exec_driver_sql(_HOLDERS[conn.dialect.name]).all()
    return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]


class Leases:
    """This process's leases on the store's jobs: `held(name)` is True inside while this
    process holds the lease, renewed every third of `seconds` meanwhile and given up at the
    end; False when another process holds it."""

    def __init__(self, store: Store, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        # Who holds a lease: the machine and the process (no personal data), and a random
        # part so that a restarted process with the same pid is someone else.
        self.holder = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"

    def take(self, name: str) -> bool:
        with self.store.write() as conn:
            return take(conn, name, self.holder, self.seconds)

    def release(self, name: str) -> None:
        with self.store.write() as conn:
            release(conn, name, self.holder)

    @contextmanager
    def held(self, name: str) -> Iterator[bool]:
        if not self.take(name):
            yield False
            return
        ending = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(name, ending), name=f"lease-{name}", daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            ending.set()
            renewer.join()
            self.release(name)

    def _renew(self, name: str, ending: threading.Event) -> None:
        while not ending.wait(self.seconds / 3):
            try:
                kept = self.take(name)
            except Exception as exc:  # the database away a moment: tried again next time
                log.warning("renewing the lease of %s failed: %s", name, type(exc).__name__)
                continue
            if not kept:
                # This process stalled past the expiry and another took the job over.
                log.warning("the lease of %s passed to another process", name)
