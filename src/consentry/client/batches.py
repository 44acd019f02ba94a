"""What both batchers share: event ids given at `add`, the retry policy, the queue and its
counts, one batch's attempts, and the reading of its answer (a retried duplicate counts as
delivered)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

from consentry.client import calls
from consentry.client.errors import (
    ConsentryAPIError,
    ConsentryClientError,
    ConsentryConnectionError,
)
from consentry.client.transport import encode, maybe_processed, retryable
from consentry.client.types import Event, EventResult

# API.md: up to 1,000 events a batch.
MAX_BATCH = 1000

ResultsHook = Callable[[list[EventResult]], None]


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with jitter: the n-th wait is drawn from [d/2, d] where
    d = min(max_delay_seconds, base_seconds * 2**n); at most `attempts` sends per batch.
    The defaults wait some 8 to 16 s in all, enough for a server to restart."""

    attempts: int = 8
    base_seconds: float = 0.25
    max_delay_seconds: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("attempts >= 1, and no negative delays")

    def delay(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay_seconds, self.base_seconds * 2.0 ** (retry - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def prepared(event: Event) -> dict[str, Any]:
    """A copy of `event` with an event_id: one is made (a UUID) when it has none, so that
    every resend of it names the same event and the server stores it at most once. An event
    that cannot be sent as JSON is refused here (TypeError, ValueError), before it is taken."""
    if not isinstance(event, Mapping):
        raise TypeError("an event is a mapping (event_type, occurred_at, subject, ...)")
    out = dict(event)
    if not out.get("event_id"):
        out["event_id"] = str(uuid.uuid4())
    encode(out)
    return out


def unexpected(exc: Exception, what: str = "the batch could not be sent") -> ConsentryClientError:
    """A failure that is not the server's nor the network's (a bug, a hook that raised), as
    the error a batcher raises with what it did not deliver."""
    error = ConsentryClientError(f"{what}: {exc!r}")
    error.__cause__ = exc
    return error


def check_limits(max_events: int, max_seconds: float) -> None:
    if not 1 <= max_events <= MAX_BATCH:
        raise ValueError(f"max_events is between 1 and {MAX_BATCH} (the API's batch limit)")
    if max_seconds <= 0:
        raise ValueError("max_seconds is above 0")


class Delivery:
    """The attempts at one batch: after each failure, how long to wait, or the error to give
    up with; and its answer read once it comes."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        retry: Retry,
        rng: random.Random,
        gpc: bool,
        stored_before: Collection[str] = (),
    ) -> None:
        self.events = events
        self.call = calls.send_events(events, gpc=gpc)
        self._retry = retry
        self._rng = rng
        self.sent = 0
        # Whether an earlier attempt may have been stored although its answer was lost: of
        # this delivery (all its events), or of an interrupted one (`stored_before`, by id).
        self._maybe_stored = False
        self._stored_before = frozenset(stored_before)

    def failed(self, error: ConsentryClientError) -> float:
        """Seconds to wait before the next attempt; raises `error` when there is none."""
        self.sent += 1
        hint = None
        if isinstance(error, ConsentryAPIError):
            if not retryable(error):
                raise error
            self._maybe_stored |= maybe_processed(error)
            hint = error.retry_after
        elif isinstance(error, ConsentryConnectionError):
            self._maybe_stored |= error.maybe_processed
        else:
            raise error
        if self.sent >= self._retry.attempts:
            raise error
        delay = self._retry.delay(self.sent, self._rng)
        if hint is not None:
            delay = max(delay, min(hint, self._retry.max_delay_seconds))
        return delay

    def settled(self, answer: Any) -> list[EventResult]:
        """Per-event results. After an attempt that may have been stored, `duplicate_event`
        means that attempt stored the event: it is delivered, not refused."""
        self.sent += 1
        results: list[EventResult] = list(answer["results"])
        if not self._maybe_stored and not self._stored_before:
            return results
        out: list[EventResult] = []
        for result in results:
            if result.get("code") == "duplicate_event" and (
                self._maybe_stored or str(result["event_id"]) in self._stored_before
            ):
                stored: EventResult = {
                    "event_id": result["event_id"],
                    "status": "accepted",
                    "purposes": [],
                    "already_stored": True,
                }
                out.append(stored)
            else:
                out.append(result)
        return out


@dataclass
class Tally:
    """What a batcher has delivered so far: counts, the refused events' results, and the
    caller's hook, called with each batch's results."""

    on_results: ResultsHook | None = None
    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    refused: list[EventResult] = field(default_factory=list)

    def add(self, results: list[EventResult], attempts: int) -> None:
        self.batches += 1
        self.retries += attempts - 1
        for result in results:
            if result["status"] == "accepted":
                self.accepted += 1
            else:
                self.rejected += 1
                self.refused.append(result)

    def tell(self, results: list[EventResult]) -> None:
        """The caller's hook, outside the batcher's lock (it may read the batcher)."""
        if self.on_results is not None:
            self.on_results(results)


class Queued(NamedTuple):
    """An event waiting in a batcher: since when (time.monotonic()), and whether an attempt
    interrupted on the way (Ctrl-C, a cancelled task) may have stored it already."""

    since: float
    event: dict[str, Any]
    maybe_stored: bool = False


class Batches:
    """The state both batchers keep: the queue, the tally, the failure that stopped them, and
    the moves on it. The sync batcher calls the methods that touch the queue under its lock."""

    def __init__(
        self,
        *,
        max_events: int,
        max_seconds: float,
        retry: Retry | None,
        on_results: ResultsHook | None,
        gpc: bool,
    ) -> None:
        check_limits(max_events, max_seconds)
        self.max_events = max_events
        self.max_seconds = max_seconds
        self._retry = retry or Retry()
        self._gpc = gpc
        self._rng = random.Random()  # noqa: S311 - jitter, not a secret
        self._tally = Tally(on_results)
        self._pending: list[Queued] = []
        self._failure: ConsentryClientError | None = None
        self._undelivered: list[dict[str, Any]] = []
        self._closing = False

    # What was delivered

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

    # The queue

    def _raise_if_failed(self) -> None:
        """The failure that stopped the batcher, with what it did not deliver."""
        if self._failure is not None:
            self._failure.undelivered = self._unsent()
            raise self._failure

    def _unsent(self) -> list[dict[str, Any]]:
        return [*self._undelivered, *(q.event for q in self._pending)]

    def _take(self, *, everything: bool) -> list[Queued] | None:
        """The next batch off the queue: a full one, or (`everything`) whatever waits; None
        when there is none to send, or the batcher has failed."""
        size = len(self._pending)
        if self._failure is not None or size == 0 or (not everything and size < self.max_events):
            return None
        batch = self._pending[: self.max_events]
        del self._pending[: self.max_events]
        return batch

    def _delivery(self, batch: list[Queued]) -> Delivery:
        stored = [str(q.event["event_id"]) for q in batch if q.maybe_stored]
        return Delivery([q.event for q in batch], self._retry, self._rng, self._gpc, stored)

    def _put_back(self, batch: list[Queued]) -> None:
        """A batch whose sending was interrupted goes back to the front of the queue, each
        event marked as maybe stored: its `duplicate_event` on the next attempt is delivery."""
        self._pending[:0] = [q._replace(maybe_stored=True) for q in batch]

    def _fail(self, exc: Exception, batch: list[Queued]) -> NoReturn:
        """Stop on a batch that could not be delivered, and raise."""
        failure = exc if isinstance(exc, ConsentryClientError) else unexpected(exc)
        self._failure = failure
        self._undelivered.extend(q.event for q in batch)
        failure.undelivered = self._unsent()
        raise failure

    def _hook_failed(self, exc: Exception) -> NoReturn:
        """Stop when `on_results` raised (its batch was delivered), and raise."""
        failure = unexpected(exc, "on_results raised")
        self._failure = failure
        failure.undelivered = self._unsent()
        raise failure
