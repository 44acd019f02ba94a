"""The Python client of the Consentry API (docs/client.md): `Client` and `AsyncClient` over
HTTP, with event batchers that resend safely. It talks HTTP only and shares no code with the
server."""

from __future__ import annotations

from consentry.client.aio import AsyncClient
from consentry.client.async_batcher import AsyncEventBatcher
from consentry.client.batcher import EventBatcher
from consentry.client.batches import Retry
from consentry.client.calls import identity
from consentry.client.errors import (
    ConsentryAPIError,
    ConsentryClientError,
    ConsentryConnectionError,
)
from consentry.client.sync import Client

__all__ = [
    "AsyncClient",
    "AsyncEventBatcher",
    "Client",
    "ConsentryAPIError",
    "ConsentryClientError",
    "ConsentryConnectionError",
    "EventBatcher",
    "Retry",
    "identity",
]
