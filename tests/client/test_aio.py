"""AsyncClient against a real gateway: the consent round trip, errors, and its batcher."""

from __future__ import annotations

import asyncio
import time

import httpx2 as httpx
import pytest

from consentry.client import (
    AsyncClient,
    Client,
    ConsentryAPIError,
    ConsentryClientError,
    Retry,
    identity,
)
from consentry.client.types import EventResult
from tests.client.conftest import NOTICE, page_view, person, stored_ids
from tests.conftest import ADMIN_KEY
from tests.servers import LiveServer


def test_round_trip_and_errors(gateway: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(gateway.url, ADMIN_KEY) as api:
            ana = identity("email", person())
            granted = await api.consents.grant(ana, ["analytics"], notice=NOTICE)
            assert granted["purposes"]["analytics"]["state"] == "granted"
            assert (await api.consents.check(ana, "analytics"))["reason"] == "granted"
            await api.consents.withdraw(ana, "all")
            assert (await api.consents.check(ana, "analytics"))["allowed"] is False
            with pytest.raises(ConsentryAPIError) as refused:
                await api.consents.check(ana, "astrology")
            assert refused.value.code == "unknown_purpose"

    asyncio.run(scenario())


def test_the_batcher_by_count_by_time_and_on_exit(gateway: LiveServer, consenting: str) -> None:
    async def scenario() -> tuple[list[str], int, int]:
        async with AsyncClient(gateway.url, ADMIN_KEY) as api:
            batcher = api.events.batcher(max_events=10, max_seconds=0.2)
            async with batcher:
                ids = [await batcher.add(page_view(consenting, n)) for n in range(23)]
                assert (batcher.batches, batcher.pending) == (2, 3)
                deadline = time.monotonic() + 5
                while batcher.batches < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert (batcher.batches, batcher.pending) == (3, 0)  # by time
                ids.append(await batcher.add(page_view(consenting, 99)))
            return ids, batcher.batches, batcher.accepted  # the last on exit

    ids, batches, accepted = asyncio.run(scenario())
    assert (batches, accepted) == (4, 24)
    with Client(gateway.url, ADMIN_KEY) as client:
        assert set(ids) <= set(stored_ids(client))


class LosesAnswers(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path == "/v1/events" and self.lost == 0:
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_the_batcher_resends_a_lost_answer_once(gateway: LiveServer, consenting: str) -> None:
    quick = Retry(attempts=3, base_seconds=0.01, max_delay_seconds=0.02)

    async def scenario() -> tuple[list[str], int, int]:
        transport = LosesAnswers()
        async with AsyncClient(gateway.url, ADMIN_KEY, transport=transport) as api:
            async with api.events.batcher(max_events=5, retry=quick) as batcher:
                ids = [await batcher.add(page_view(consenting, n)) for n in range(5)]
            assert transport.lost == 1
            return ids, batcher.accepted, batcher.retries

    ids, accepted, retries = asyncio.run(scenario())
    assert (accepted, retries) == (5, 1)
    with Client(gateway.url, ADMIN_KEY) as client:
        stored = [i for i in stored_ids(client) if i in set(ids)]
    assert sorted(stored) == sorted(ids)


class Stalls(httpx.AsyncBaseTransport):
    """The real network, except that the answer to the first POST /v1/events, once the server
    has stored the batch, never comes back (the caller gives up first)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.stalled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path == "/v1/events" and not self.stalled:
            await response.aread()
            await response.aclose()
            self.stalled += 1
            await asyncio.sleep(60)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_flush_cancelled_by_a_timeout_keeps_its_batch(
    gateway: LiveServer, consenting: str
) -> None:
    async def scenario() -> tuple[list[str], int, list[EventResult]]:
        async with AsyncClient(gateway.url, ADMIN_KEY, transport=Stalls()) as api:
            async with api.events.batcher(max_events=10, max_seconds=60) as batcher:
                ids = [await batcher.add(page_view(consenting, n)) for n in range(3)]
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(batcher.flush(), 0.5)
                assert batcher.pending == 3
            # Resent on exit: stored by the cancelled attempt, so delivered, not refused.
            return ids, batcher.accepted, batcher.refused

    ids, accepted, refused = asyncio.run(scenario())
    assert (accepted, refused) == (3, [])
    with Client(gateway.url, ADMIN_KEY) as client:
        stored = [i for i in stored_ids(client) if i in set(ids)]
    assert sorted(stored) == sorted(ids)


def test_a_hook_that_raises_in_the_background_stops_the_batcher_loudly(
    gateway: LiveServer, consenting: str
) -> None:
    def broken(results: list[EventResult]) -> None:
        raise RuntimeError("a bug in the hook")

    async def scenario() -> None:
        async with AsyncClient(gateway.url, ADMIN_KEY) as api:
            batcher = api.events.batcher(max_seconds=0.05, on_results=broken)
            batcher.start()
            await batcher.add(page_view(consenting, 1))
            deadline = time.monotonic() + 5
            while batcher.batches == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert batcher.batches == 1  # sent by the background task, whose hook raised
            with pytest.raises(ConsentryClientError, match="on_results") as failed:
                await batcher.add(page_view(consenting, 2))
            assert isinstance(failed.value.__cause__, RuntimeError)
            assert (batcher.accepted, failed.value.undelivered) == (1, [])
            with pytest.raises(ConsentryClientError, match="on_results"):
                await batcher.close()

    asyncio.run(scenario())
