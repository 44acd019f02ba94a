"""A daemon thread that does a piece of work every so many seconds until stopped: the
background work of a server process (the request runner, the retention sweep, the alerts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """`start()` runs `work` every `interval` seconds (never when it is 0) in a daemon thread
    called `name`; `stop()` ends it, waiting for a pass under way. A failed pass is logged by
    its exception's type only (a message may quote personal data) and the next one runs."""

    def __init__(self, name: str, interval: float, work: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.work = work
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

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.work()
            except Exception as exc:
                log.error("%s: a pass failed: %s", self.name, type(exc).__name__)
