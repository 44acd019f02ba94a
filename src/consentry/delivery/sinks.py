"""Where deliveries go: two small interfaces (one signed body to one URL; signed records to
one topic) and the webhook sink (the Kafka sink is delivery/kafka.py)."""

from __future__ import annotations

import hashlib
import hmac
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpcore2 as httpcore
import httpx2 as httpx

from consentry.errors import EndpointNotAllowed
from consentry.governance import endpoints

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


@dataclass(frozen=True, slots=True)
class Record:
    """One record for a topic: its key, its value and the value's signature."""

    key: bytes
    value: bytes
    signature: str


class RecordSink(Protocol):
    def send_records(self, endpoint: str, records: Sequence[Record]) -> Outcome:
        """Deliver every record or report the batch failed; never raises for a receiver's
        fault."""

    def close(self) -> None: ...


def signature(secret: bytes, body: bytes) -> str:
    """HMAC-SHA256 of the exact body bytes under the system's signing secret, lowercase hex."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class _Unresolved(Exception):
    """The endpoint's name did not resolve (at connection time)."""


class _CheckedBackend(httpcore.NetworkBackend):
    """Connects by resolving the URL's name itself, checking every address (unless private
    endpoints are allowed; for `plaintext`, that none is public) and connecting to an address
    it checked, so a second DNS answer cannot swap it (rebinding). The URL keeps its name: the
    pool keys connections by it, and TLS sends it as SNI and checks the certificate against
    it."""

    def __init__(self, allow_private: bool, resolver: endpoints.Resolver, plaintext: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._resolver = resolver
        self._plaintext = plaintext

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = endpoints.connect_addresses(
                host, port, allow_private=self._allow_private, resolver=self._resolver
            )
        except (OSError, UnicodeError):
            raise _Unresolved from None
        if self._plaintext and not endpoints.plaintext_allowed(addresses):
            raise EndpointNotAllowed("a plaintext (http://) endpoint reaches a public address")
        failure: Exception = httpcore.ConnectError("no address")
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("endpoints are TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _CheckedTransport(httpx.BaseTransport):
    """httpx over an httpcore pool with the checked backend (httpx's own transport does not
    take a backend). An answer is read whole: only its status is used."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        # One verifying context for the pool (system CA store, host names checked), built once:
        # without it every connection builds its own and reads SSL_CERT_* from the environment.
        self._pool = httpcore.ConnectionPool(
            network_backend=backend, ssl_context=ssl.create_default_context()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.read(),
            extensions=request.extensions,
        )
        try:
            answer = self._pool.handle_request(core)
            try:
                content = answer.read()
            finally:
                answer.close()
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc), request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.TransportError(str(exc), request=request) from exc
        return httpx.Response(answer.status, headers=answer.headers, content=content)

    def close(self) -> None:
        self._pool.close()


# Why a send failed, as stored with the delivery (the first class that matches).
_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (EndpointNotAllowed, EndpointNotAllowed.code),
    (_Unresolved, "name not resolved"),
    (httpx.InvalidURL, "invalid endpoint URL"),
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connection failed"),
)


class WebhookSink:
    """POST with the signature header; pooled connections (per name); bounded by a timeout.
    `http://` goes through a client of its own whose every address is checked non-public
    (endpoints.plaintext_allowed), as when the system was stored."""

    def __init__(
        self,
        timeout: float,
        *,
        allow_private: bool = False,
        resolver: endpoints.Resolver = endpoints.resolve,
    ) -> None:
        self._clients = {
            plaintext: httpx.Client(
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                trust_env=False,
                transport=_CheckedTransport(_CheckedBackend(allow_private, resolver, plaintext)),
            )
            for plaintext in (False, True)
        }

    def send(self, endpoint: str, body: bytes, signature: str) -> Outcome:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        try:
            client = self._clients[httpx.URL(endpoint).scheme != "https"]
            response = client.post(endpoint, content=body, headers=headers)
        except (EndpointNotAllowed, _Unresolved, httpx.InvalidURL, httpx.HTTPError) as exc:
            # An invalid URL is refused when stored; one stored before must not abort a pass.
            reason = next((r for kind, r in _FAILURES if isinstance(exc, kind)), None)
            return Outcome(False, reason or type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(True)
        return Outcome(False, f"HTTP {response.status_code}")

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
