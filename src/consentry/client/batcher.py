"""The sync client's event batcher: `add` from any thread, batches by count and by age
(a background thread), resends safely, flushes on exit, and never drops an event silently."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from consentry.client.batches import Batches, Queued, ResultsHook, Retry, prepared
from consentry.client.calls import Call
from consentry.client.errors import ConsentryClientError
from consentry.client.types import Event, EventResult


class EventBatcher(Batches):
    """Queue events with `add`; they go to `POST /v1/events` in batches of `max_events`, or
    when the oldest has waited `max_seconds`, one batch at a time, in order.

    A batch is sent again after a connection error, a timeout, a 408, a 429 or a 5xx, with
    backoff (`retry`); the event ids given at `add` make every resend name the same events.
    Per-event refusals are results, not errors: see `refused`, `accepted`, `rejected` and
    `on_results`. A whole batch refused (another 4xx), or a batch still undelivered after the
    last attempt, raises ConsentryAPIError or ConsentryConnectionError from the call that
    sent it, or, when the background thread sent it, from the next `add`, `flush` or the
    exit; its `undelivered` lists every accepted event not delivered, and the batcher takes
    no more events. So does an `on_results` that raised (ConsentryClientError, the hook's
    error as its cause). A batch whose sending is interrupted (KeyboardInterrupt) goes back
    to the front of the queue, to be sent again by the next flush or the exit."""

    def __init__(
        self,
        exchange: Callable[[Call], Any],
        *,
        max_events: int = 500,
        max_seconds: float = 1.0,
        retry: Retry | None = None,
        on_results: ResultsHook | None = None,
        gpc: bool = False,
    ) -> None:
        super().__init__(
            max_events=max_events,
            max_seconds=max_seconds,
            retry=retry,
            on_results=on_results,
            gpc=gpc,
        )
        self._exchange = exchange
        # `_lock` guards the queue and the state; `_sending` keeps batches in order, one at a
        # time, and is always taken before `_lock` (reentrant: `on_results` may `add`).
        self._lock = threading.Lock()
        self._sending = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # Use

    def __enter__(self) -> EventBatcher:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the background flush (entering the `with` block does)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="consentry-batcher", daemon=True)
            self._thread.start()

    def add(self, event: Event) -> str:
        """Queue one event; returns its event_id (made here when it had none). Sends a batch
        first when `max_events` are waiting (in this thread: backpressure)."""
        ready = prepared(event)
        if self._thread is None:
            self.start()
        with self._lock:
            self._raise_if_failed()
            if self._closing:
                raise RuntimeError("the batcher is closed")
            self._pending.append(Queued(time.monotonic(), ready))
            if len(self._pending) == 1:
                self._wake.notify()
            full = len(self._pending) >= self.max_events
        if full:
            self._send(everything=False)
        return str(ready["event_id"])

    def flush(self) -> None:
        """Send everything queued now; raises as `add` does when a batch cannot be delivered."""
        self._send(everything=True)
        with self._lock:
            self._raise_if_failed()

    def close(self) -> None:
        """Stop the background thread and flush; raises when an event was not delivered."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()

    # Inside

    def _send(self, *, everything: bool) -> None:
        """Send queued batches in order: all of them, or only full ones."""
        with self._sending:
            while True:
                with self._lock:
                    batch = self._take(everything=everything)
                if batch is None:
                    return
                try:
                    results = self._deliver(batch)
                except Exception as exc:  # whatever it was, the batch is kept
                    with self._lock:
                        self._fail(exc, batch)
                except BaseException:  # Ctrl-C: kept for the next flush, then let through
                    with self._lock:
                        self._put_back(batch)
                    raise
                try:
                    self._tally.tell(results)
                except Exception as exc:
                    with self._lock:
                        self._hook_failed(exc)

    def _deliver(self, batch: list[Queued]) -> list[EventResult]:
        delivery = self._delivery(batch)
        while True:
            try:
                answer = self._exchange(delivery.call)
            except ConsentryClientError as exc:
                time.sleep(delivery.failed(exc))
                continue
            results = delivery.settled(answer)
            with self._lock:
                self._tally.add(results, delivery.sent)
            return results

    def _run(self) -> None:
        """The background flush: a batch goes once its oldest event is `max_seconds` old."""
        while True:
            with self._lock:
                while True:
                    if self._closing or self._failure is not None:
                        return
                    if self._pending:
                        wait = self._pending[0].since + self.max_seconds - time.monotonic()
                        if wait <= 0:
                            break
                        self._wake.wait(wait)
                    else:
                        self._wake.wait()
            try:
                self._send(everything=True)
            except ConsentryClientError:
                return  # kept in `_failure`, raised to the caller by add, flush or close
