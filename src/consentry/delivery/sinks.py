"""Where deliveries go: a small interface (one signed body to one destination) and the
webhook sink; a Kafka sink fits the same interface."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2 as httpx

from consentry.errors import EndpointNotAllowed
from consentry.governance import endpoints

SIGNATURE_HEADER = "X-Consentry-Signature"
_PORTS = {"https": 443, "http": 80}


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

    def __init__(self, timeout: float, *, allow_private: bool = False) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )
        self._allow_private = allow_private

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        target = self._target(httpx.URL(endpoint), headers)
        if isinstance(target, Outcome):
            return target
        url, extensions = target
        try:
            response = self._client.post(url, content=body, headers=headers, extensions=extensions)
        except httpx.TimeoutException:
            return Outcome(False, "timeout")
        except httpx.ConnectError:
            return Outcome(False, "connection failed")
        except httpx.HTTPError as exc:
            return Outcome(False, type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(True)
        return Outcome(False, f"HTTP {response.status_code}")

    def _target(
        self, url: httpx.URL, headers: dict[str, str]
    ) -> tuple[httpx.URL, dict[str, Any]] | Outcome:
        """The URL to connect to: unless private endpoints are allowed, the address checked on
        every send and connected to as checked (a name that resolved to a public address when
        the system was stored may not any more: DNS rebinding); the name stays in Host and SNI."""
        if self._allow_private:
            return url, {}
        try:
            address = endpoints.connect_address(url.host, url.port or _PORTS[url.scheme])
        except EndpointNotAllowed:
            return Outcome(False, EndpointNotAllowed.code)
        except (OSError, UnicodeError):
            return Outcome(False, "name not resolved")
        if address == url.host:
            return url, {}
        headers["Host"] = url.netloc.decode("ascii")
        return url.copy_with(host=address), {"sni_hostname": url.host}

    def close(self) -> None:
        self._client.close()
