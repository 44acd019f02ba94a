"""The async client's event batcher: the sync one's guarantees, with a task in place of the
thread and `await add(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from consentry.client.batches import (
    Delivery,
    ResultsHook,
    Retry,
    Tally,
    check_limits,
    prepared,
    unexpected,
)
from consentry.client.calls import Call
from consentry.client.errors import ConsentryClientError
from consentry.client.types import Event, EventResult


class AsyncEventBatcher:
    """As EventBatcher (consentry.client.batcher), for one event loop: `await add(event)`
    queues an event (sending a full batch first), a task sends a batch once its oldest event
    is `max_seconds` old, and leaving `async with` flushes. Not for use from other threads."""

    def __init__(
        self,
        exchange: Callable[[Call], Awaitable[Any]],
        *,
        max_events: int = 500,
        max_seconds: float = 1.0,
        retry: Retry | None = None,
        on_results: ResultsHook | None = None,
        gpc: bool = False,
    ) -> None:
        check_limits(max_events, max_seconds)
        self._exchange = exchange
        self.max_events = max_events
        self.max_seconds = max_seconds
        self._retry = retry or Retry()
        self._gpc = gpc
        self._rng = random.Random()  # noqa: S311 - jitter, not a secret
        self._tally = Tally(on_results)
        self._sending = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: list[tuple[float, dict[str, Any]]] = []
        self._failure: ConsentryClientError | None = None
        self._undelivered: list[dict[str, Any]] = []
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def accepted(self) -> int:
        return self._tally.accepted

    @property
    def rejected(self) -> int:
        return self._tally.rejected

    @property
    def refused(self) -> list[EventResult]:
        """The results of refused events (with their `code`), oldest first."""
        return self._tally.refused

    @property
    def batches(self) -> int:
        return self._tally.batches

    @property
    def retries(self) -> int:
        return self._tally.retries

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def __aenter__(self) -> AsyncEventBatcher:
        self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start the background flush (entering `async with` does)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def add(self, event: Event) -> str:
        """Queue one event; returns its event_id (made here when it had none)."""
        ready = prepared(event)
        self.start()
        self._raise_if_failed()
        if self._closing:
            raise RuntimeError("the batcher is closed")
        self._pending.append((time.monotonic(), ready))
        self._wake.set()
        if len(self._pending) >= self.max_events:
            await self._send(everything=False)
        return str(ready["event_id"])

    async def flush(self) -> None:
        """Send everything queued now; raises when a batch cannot be delivered."""
        await self._send(everything=True)
        self._raise_if_failed()

    async def close(self) -> None:
        """Stop the background task and flush; raises when an event was not delivered."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            self._failure.undelivered = [*self._undelivered, *(e for _, e in self._pending)]
            raise self._failure

    async def _send(self, *, everything: bool) -> None:
        async with self._sending:
            while self._failure is None:
                size = len(self._pending)
                if size == 0 or (not everything and size < self.max_events):
                    return
                batch = [e for _, e in self._pending[: self.max_events]]
                del self._pending[: self.max_events]
                try:
                    results = await self._deliver(batch)
                except Exception as exc:  # whatever it was, the batch is kept
                    failure = exc if isinstance(exc, ConsentryClientError) else unexpected(exc)
                    self._failure = failure
                    self._undelivered.extend(batch)
                    self._raise_if_failed()
                self._tally.tell(results)

    async def _deliver(self, batch: list[dict[str, Any]]) -> list[EventResult]:
        delivery = Delivery(batch, self._retry, self._rng, self._gpc)
        while True:
            try:
                answer = await self._exchange(delivery.call)
            except ConsentryClientError as exc:
                await asyncio.sleep(delivery.failed(exc))
                continue
            results = delivery.settled(answer)
            self._tally.add(results, delivery.sent)
            return results

    async def _run(self) -> None:
        while not self._closing and self._failure is None:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._pending[0][0] + self.max_seconds - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            try:
                await self._send(everything=True)
            except ConsentryClientError:
                return  # kept in `_failure`, raised by add, flush or close
