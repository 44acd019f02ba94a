"""Where deliveries go: a small interface (one signed body to one destination) and the
webhook sink; a Kafka sink fits the same interface."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

import httpx2 as httpx

SIGNATURE_HEADER = "X-Consentry-Signature"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A 2xx (ok), or the reason it failed, safe to store (no body of the answer)."""

    ok: bool
    error: str | None = None


class Sink(Protocol):
    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        """Deliver one body; never raises for a receiver's fault."""

    def close(self) -> None: ...


def signature(secret: bytes, body: bytes) -> str:
    """HMAC-SHA256 of the exact body bytes under the system's signing secret, lowercase hex."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POST with the signature header; pooled connections; bounded by a timeout."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        try:
            response = self._client.post(endpoint, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(False, "timeout")
        except httpx.ConnectError:
            return Outcome(False, "connection failed")
        except httpx.HTTPError as exc:
            return Outcome(False, type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(True)
        return Outcome(False, f"HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
