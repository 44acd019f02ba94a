"""A daemon thread that does a piece of work every so many seconds until stopped: the
background work of a server process (the request runner, the retention sweep, the alerts).
With a lease, a pass runs only in the one process holding the job's lease at that moment,
of all the processes and machines sharing the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

log = logging.getLogger(__name__)


class Lease(Protocol):
    """Leases on jobs by name (storage/leases.py)."""

    def held(self, name: str) -> AbstractContextManager[bool]:
        """True inside while this process holds the lease `name` (kept while inside, given
        up at the end); False when another process holds it."""
        ...


class Periodic:
    """`start()` runs `work` every `interval` seconds (never when it is 0) in a daemon thread
    called `name`; `stop()` ends it, waiting for a pass under way. A failed pass is logged by
    its exception's type only (a message may quote personal data) and the next one runs.
    With a `lease`, a pass whose lease another process holds is skipped (that process is doing
    it); a holder that dies leaves the lease to expire."""

    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], object],
        lease: Lease | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.work = work
        self.lease = lease
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run from now on; again after a `stop()`."""
        self.stopping.clear()
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def run_once(self) -> bool:
        """One pass now, under the job's lease if it has one; False when another process
        holds the lease (nothing was done here)."""
        if self.lease is None:
            self.work()
            return True
        with self.lease.held(self.name) as mine:
            if mine:
                self.work()
            return mine

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:
                log.error("%s: a pass failed: %s", self.name, type(exc).__name__)
