"""The async client's event batcher: the sync one's guarantees, with a task in place of the
thread and `await add(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from consentry.client.batches import Batches, Queued, ResultsHook, Retry, prepared
from consentry.client.calls import Call
from consentry.client.errors import ConsentryClientError
from consentry.client.types import Event, EventResult


class AsyncEventBatcher(Batches):
    """As EventBatcher (consentry.client.batcher), for one event loop: `await add(event)`
    queues an event (sending a full batch first), a task sends a batch once its oldest event
    is `max_seconds` old, and leaving `async with` flushes. Not for use from other threads.
    A batch whose sending is cancelled (say `asyncio.wait_for(batcher.flush(), timeout)` timed
    out) goes back to the front of the queue, to be sent again by the next flush or the exit."""

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
        super().__init__(
            max_events=max_events,
            max_seconds=max_seconds,
            retry=retry,
            on_results=on_results,
            gpc=gpc,
        )
        self._exchange = exchange
        self._sending = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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
        self._pending.append(Queued(time.monotonic(), ready))
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

    async def _send(self, *, everything: bool) -> None:
        async with self._sending:
            while (batch := self._take(everything=everything)) is not None:
                try:
                    results = await self._deliver(batch)
                except Exception as exc:  # whatever it was, the batch is kept
                    self._fail(exc, batch)
                except BaseException:  # cancelled: kept for the next flush, then let through
                    self._put_back(batch)
                    raise
                try:
                    self._tally.tell(results)
                except Exception as exc:
                    self._hook_failed(exc)

    async def _deliver(self, batch: list[Queued]) -> list[EventResult]:
        delivery = self._delivery(batch)
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
            wait = self._pending[0].since + self.max_seconds - time.monotonic()
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            try:
                await self._send(everything=True)
            except ConsentryClientError:
                return  # kept in `_failure`, raised by add, flush or close
