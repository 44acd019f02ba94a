"""The base of every resource (`client.consents`, `client.audit`, ...): one call sent once
through its client's `exchange`, sync or async."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from consentry.client.calls import Call


class Exchanges(Protocol):
    def exchange(self, call: Call) -> Any: ...


class AsyncExchanges(Protocol):
    def exchange(self, call: Call) -> Awaitable[Any]: ...


class Resource:
    def __init__(self, client: Exchanges) -> None:
        self._client = client

    def _call(self, call: Call) -> Any:
        return self._client.exchange(call)


class AsyncResource:
    def __init__(self, client: AsyncExchanges) -> None:
        self._client = client

    async def _call(self, call: Call) -> Any:
        return await self._client.exchange(call)
