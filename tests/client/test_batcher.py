"""The sync batcher against a real gateway: batches by count and by time, refusals reported,
whole-batch refusals raised, lost answers resent without a duplicate, nothing dropped."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import httpx2 as httpx
import pytest

from consentry.client import (
    Client,
    ConsentryAPIError,
    ConsentryClientError,
    ConsentryConnectionError,
    EventBatcher,
    Retry,
)
from consentry.client.types import EventResult
from tests.client.conftest import page_view, stored_ids
from tests.conftest import ADMIN_KEY
from tests.servers import LiveServer, free_port

QUICK = Retry(attempts=5, base_seconds=0.01, max_delay_seconds=0.05)


def add_all(batcher: EventBatcher, events: list[dict[str, Any]]) -> None:
    with batcher:
        for event in events:
            batcher.add(event)


def test_it_batches_by_count(client: Client, consenting: str) -> None:
    seen: list[list[EventResult]] = []
    with client.events.batcher(max_events=10, max_seconds=60, on_results=seen.append) as batcher:
        ids = [batcher.add(page_view(consenting, n)) for n in range(25)]
        # Two full batches went as the 10th and 20th event came; five wait for the exit.
        assert (batcher.batches, batcher.accepted, batcher.pending) == (2, 20, 5)
    assert [len(results) for results in seen] == [10, 10, 5]
    assert batcher.accepted == 25
    assert batcher.refused == []
    assert len(set(ids)) == 25
    assert set(ids) <= set(stored_ids(client))


def test_it_sends_a_batch_once_its_oldest_event_is_max_seconds_old(
    client: Client, consenting: str
) -> None:
    with client.events.batcher(max_events=500, max_seconds=0.2) as batcher:
        batcher.add(page_view(consenting, 1))
        batcher.add(page_view(consenting, 2))
        deadline = time.monotonic() + 5
        while batcher.batches == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Delivered by the background thread, before the exit.
        assert (batcher.batches, batcher.accepted, batcher.pending) == (1, 2, 0)


def test_refused_events_are_reported_not_retried(client: Client, consenting: str) -> None:
    with client.events.batcher(max_events=3, max_seconds=60) as batcher:
        batcher.add(page_view(consenting, 1))
        refused_id = batcher.add({**page_view(consenting, 2), "event_type": "no_such_type"})
        batcher.add(page_view("nobody.asked@example.com", 3))
    assert (batcher.accepted, batcher.rejected, batcher.retries) == (1, 2, 0)
    first = batcher.refused[0]
    assert (first["event_id"], first.get("code")) == (refused_id, "unknown_event_type")
    assert batcher.refused[1].get("code") == "no_consent"


def test_a_whole_batch_refused_raises_with_the_events_it_did_not_deliver(
    gateway: LiveServer, consenting: str
) -> None:
    events = [page_view(consenting, n) for n in range(3)]
    with Client(gateway.url, "not-a-key") as stranger:
        batcher = stranger.events.batcher(max_events=10, max_seconds=60, retry=QUICK)
        with pytest.raises(ConsentryAPIError) as refused:
            add_all(batcher, events)
    assert refused.value.code == "unauthenticated"
    assert [e["properties"] for e in refused.value.undelivered] == [e["properties"] for e in events]
    assert batcher.retries == 0  # a 401 is not retried


def test_an_unreachable_server_raises_and_drops_nothing(consenting: str) -> None:
    with Client(f"http://127.0.0.1:{free_port()}", ADMIN_KEY) as nowhere:
        batcher = nowhere.events.batcher(max_events=2, max_seconds=60, retry=QUICK)
        with pytest.raises(ConsentryConnectionError) as lost:
            # The second fills the batch, which goes, and fails, in that `add`.
            add_all(batcher, [page_view(consenting, 1), page_view(consenting, 2)])
    assert len(lost.value.undelivered) == 2
    assert all(e["event_id"] for e in lost.value.undelivered)
    # Once failed, the batcher takes nothing more: it would not be delivered either.
    with pytest.raises(ConsentryConnectionError):
        batcher.add(page_view(consenting, 3))


class LosesAnswers(httpx.BaseTransport):
    """The real network, except that the first `lose` answers to POST /v1/events are lost
    after the server has handled the batch (as when a connection drops on the way back)."""

    def __init__(self, lose: int) -> None:
        self._inner = httpx.HTTPTransport()
        self._lose = lose
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path == "/v1/events" and self.lost < self._lose:
            response.read()
            response.close()
            self.lost += 1
            raise httpx.ReadError("connection reset on the way back", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_lost_answer_is_resent_and_stored_once(gateway: LiveServer, consenting: str) -> None:
    transport = LosesAnswers(lose=2)
    with Client(gateway.url, ADMIN_KEY, transport=transport) as flaky:
        with flaky.events.batcher(max_events=4, max_seconds=60, retry=QUICK) as batcher:
            ids = [batcher.add(page_view(consenting, n)) for n in range(4)]
            refused = batcher.add({**page_view(consenting, 9), "event_type": "no_such_type"})
        assert transport.lost == 2
        assert (batcher.accepted, batcher.rejected, batcher.retries) == (4, 1, 2)
        assert [r.get("code") for r in batcher.refused] == ["unknown_event_type"]
        assert batcher.refused[0]["event_id"] == refused
        stored = [i for i in stored_ids(flaky) if i in set(ids)]
        assert sorted(stored) == sorted(ids)  # every one, once


def test_an_event_id_already_stored_is_a_refusal_on_a_first_attempt(
    client: Client, consenting: str
) -> None:
    event_id = f"evt-{uuid.uuid4()}"
    assert client.events.send([page_view(consenting, event_id=event_id)])["accepted"] == 1
    with client.events.batcher() as batcher:
        assert batcher.add(page_view(consenting, event_id=event_id)) == event_id
    assert [r.get("code") for r in batcher.refused] == ["duplicate_event"]


def test_add_is_thread_safe(client: Client, consenting: str) -> None:
    with client.events.batcher(max_events=7, max_seconds=0.05) as batcher:
        ids: list[str] = []
        lock = threading.Lock()

        def add_many(base: int) -> None:
            for n in range(40):
                event_id = batcher.add(page_view(consenting, base + n))
                with lock:
                    ids.append(event_id)

        threads = [threading.Thread(target=add_many, args=(k * 100,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert batcher.accepted == 160
    assert len(set(ids)) == 160
    assert set(ids) <= set(stored_ids(client))


def test_an_event_that_is_not_json_is_refused_at_add(client: Client, consenting: str) -> None:
    with client.events.batcher(max_events=2, max_seconds=60) as batcher:
        with pytest.raises(TypeError):
            batcher.add({**page_view(consenting), "properties": {"url": object()}})
        with pytest.raises(ValueError, match="time zone"):
            batcher.add({**page_view(consenting), "occurred_at": datetime(2026, 1, 1)})
        batcher.add(page_view(consenting, 1))
    assert (batcher.accepted, batcher.rejected) == (1, 0)


class FailsFirst(httpx.BaseTransport):
    """A proxy in front of the gateway that answers the first batch with its own 502 page."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.failed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events" and not self.failed:
            self.failed += 1
            return httpx.Response(502, headers={"content-type": "text/html"}, text="<h1>502</h1>")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_a_5xx_is_retried_and_a_page_is_not_a_problem(gateway: LiveServer, consenting: str) -> None:
    with (
        Client(gateway.url, ADMIN_KEY, transport=FailsFirst()) as behind_proxy,
        pytest.raises(ConsentryAPIError) as once,
    ):
        behind_proxy.events.send([page_view(consenting)])
    assert (once.value.status, once.value.code) == (502, "http_502")
    with Client(gateway.url, ADMIN_KEY, transport=FailsFirst()) as behind_proxy:
        with behind_proxy.events.batcher(max_events=2, retry=QUICK) as batcher:
            ids = [batcher.add(page_view(consenting, n)) for n in range(2)]
        assert (batcher.accepted, batcher.retries, batcher.refused) == (2, 1, [])
        assert sorted(i for i in stored_ids(behind_proxy) if i in ids) == sorted(ids)


def test_the_backoff_stays_within_its_bounds() -> None:
    retry = Retry(attempts=8, base_seconds=0.25, max_delay_seconds=4.0)
    rng = random.Random(7)  # noqa: S311 - repeatable draws, not secrets
    for n in range(1, 8):
        ceiling = min(4.0, 0.25 * 2 ** (n - 1))
        waits = [retry.delay(n, rng) for _ in range(200)]
        assert ceiling / 2 <= min(waits) <= max(waits) <= ceiling
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=0)


def test_a_hook_may_add_from_the_sending_thread(client: Client, consenting: str) -> None:
    follow_ups = iter(range(3))

    def follow_up(results: list[EventResult]) -> None:
        n = next(follow_ups, None)
        if n is not None:
            batcher.add(page_view(consenting, 100 + n))

    with client.events.batcher(max_events=1, on_results=follow_up) as batcher:
        batcher.add(page_view(consenting, 1))
    assert batcher.accepted == 4


class InterruptedOnce(httpx.BaseTransport):
    """The real network, except that Ctrl-C comes while the answer to the first POST
    /v1/events is on its way back: the server stored the batch, the caller never heard."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.interrupted = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path == "/v1/events" and not self.interrupted:
            response.read()
            response.close()
            self.interrupted += 1
            raise KeyboardInterrupt
        return response

    def close(self) -> None:
        self._inner.close()


def test_an_interrupted_batch_is_kept_and_counts_as_delivered_when_resent(
    gateway: LiveServer, consenting: str
) -> None:
    with Client(gateway.url, ADMIN_KEY, transport=InterruptedOnce()) as api:
        batcher = api.events.batcher(max_events=2, max_seconds=60, retry=QUICK)
        ids = [f"evt-{uuid.uuid4()}" for _ in range(2)]
        batcher.add(page_view(consenting, 1, event_id=ids[0]))
        with pytest.raises(KeyboardInterrupt):
            batcher.add(page_view(consenting, 2, event_id=ids[1]))  # fills the batch, sent here
        assert batcher.pending == 2
        batcher.close()
        # The resend finds both stored by the interrupted attempt: delivered, not refused.
        assert (batcher.accepted, batcher.rejected, batcher.refused) == (2, 0, [])
        assert batcher.pending == 0
        stored = [i for i in stored_ids(api) if i in set(ids)]
        assert sorted(stored) == sorted(ids)  # each once


def test_a_hook_that_raises_in_the_background_stops_the_batcher_loudly(
    client: Client, consenting: str
) -> None:
    def broken(results: list[EventResult]) -> None:
        raise RuntimeError("a bug in the hook")

    batcher = client.events.batcher(max_events=500, max_seconds=0.05, on_results=broken)
    batcher.start()
    batcher.add(page_view(consenting, 1))
    deadline = time.monotonic() + 5
    while batcher.batches == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert batcher.batches == 1  # sent by the background thread, whose hook raised
    with pytest.raises(ConsentryClientError, match="on_results") as failed:
        batcher.close()
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert (batcher.accepted, failed.value.undelivered) == (1, [])
    with pytest.raises(ConsentryClientError, match="on_results"):
        batcher.add(page_view(consenting, 2))
