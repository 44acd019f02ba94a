"""What the demo has seen so far, shared by the threads that feed it (the sender, the
batcher's results, the receivers, the poller of the server's figures) and the display."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RATE_WINDOW_SECONDS = 3.0


@dataclass
class Tally:
    """Counts kept by the demo itself; `server` holds the latest compliance summary and
    `systems` each system's delivery figures, as the API answered them."""

    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    consents: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    api_refusals: Counter[str] = field(default_factory=Counter)
    incident: dict[str, Any] | None = None
    server: dict[str, Any] = field(default_factory=dict)
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    phase: str = "starting"
    _marks: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def restart_clock(self) -> None:
        with self._lock:
            self.started = time.monotonic()
            self._marks.clear()
            self._marks.append((self.started, self.sent))

    def sent_one(self) -> None:
        with self._lock:
            self.sent += 1

    def results(self, results: Sequence[Any]) -> None:
        """The batcher's per-event results (its `on_results` hook, from its thread)."""
        with self._lock:
            for result in results:
                if result.get("status") == "accepted":
                    self.accepted += 1
                else:
                    self.refused[str(result.get("code"))] += 1

    def count(self, kind: str, what: str, n: int = 1) -> None:
        """One more of `what` among `kind`: consents, requests or api_refusals."""
        with self._lock:
            counter: Counter[str] = getattr(self, kind)
            counter[what] += n

    def observed(self, summary: dict[str, Any], systems: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self.server = summary
            self.systems = systems

    def rate(self) -> float:
        """Events sent per second over the last few seconds."""
        now = time.monotonic()
        with self._lock:
            self._marks.append((now, self.sent))
            # The oldest mark kept is the newest one at least a window old.
            while len(self._marks) > 2 and now - self._marks[1][0] >= RATE_WINDOW_SECONDS:
                self._marks.popleft()
            (t0, n0), (t1, n1) = self._marks[0], self._marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
