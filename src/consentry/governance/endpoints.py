"""Which addresses a system's endpoints may reach: public ones only (a loopback, link-local,
private or otherwise non-public address is refused as `endpoint_not_allowed`), unless
CONSENTRY_ALLOW_PRIVATE_ENDPOINTS says otherwise. Checked when a system is stored, and again
by the delivery worker on the address it connects to (a name may resolve elsewhere later).
Also the one parser of a Kafka endpoint (`kafka://` plaintext, `kafkas://` TLS) and where
plaintext (`http://`, `kafka://`) may go: to non-public addresses only (plaintext_allowed)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2 as httpx

from consentry.errors import EndpointNotAllowed, InvalidEndpoint

# How long storing a system waits for a name to resolve; past it the name counts as unresolved.
RESOLVE_SECONDS = 2.0
_PORTS = {"https": 443, "http": 80}
# A Kafka endpoint's scheme: kafkas:// is TLS, kafka:// is plaintext (private clusters only).
KAFKA_SCHEMES = {"kafka": False, "kafkas": True}
# The schemes that carry personal data in clear: to non-public addresses only.
PLAINTEXT_SCHEMES = frozenset({"http", "kafka"})
# A Kafka endpoint's path: one topic, named as Kafka allows (legal characters, at most 249).
_TOPIC = re.compile(r"/[A-Za-z0-9._-]{1,249}")
_resolver = ThreadPoolExecutor(max_workers=2, thread_name_prefix="consentry-resolve")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]


# Forms that carry an IPv4 address or reach one through a translator, refused whole: NAT64
# (RFC 6052 and the local-use RFC 8215 prefix), IPv4-compatible (deprecated), and site-local
# (deprecated, used as private). Python counts them all as global.
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "fec0::/10")
)


@dataclass(frozen=True, slots=True)
class KafkaEndpoint:
    """`kafka://host:port/topic` (plaintext) or `kafkas://host:port/topic` (TLS)."""

    host: str
    port: int
    topic: str
    tls: bool


def kafka_endpoint(value: str) -> KafkaEndpoint:
    """The parts of a Kafka endpoint: its broker's host and port, and one topic, and nothing
    else (no query); ValueError otherwise. The one parser of the shape: the data map refuses
    any other when a system is stored, the Kafka sink reads its parts from here."""
    parts = urlsplit(value)
    host, port = parts.hostname, parts.port
    if (
        parts.scheme not in KAFKA_SCHEMES
        or not host
        or port is None
        or parts.query
        or _TOPIC.fullmatch(parts.path) is None
    ):
        raise ValueError("not a kafka(s)://host:port/topic endpoint")
    return KafkaEndpoint(host, port, parts.path[1:], KAFKA_SCHEMES[parts.scheme])


def is_kafka(value: str) -> bool:
    """Whether `value` is a Kafka endpoint (kafka_endpoint parses it)."""
    try:
        kafka_endpoint(value)
    except ValueError:
        return False
    return True


# Where plaintext may go: loopback, private (RFC 1918, RFC 6598 shared, IPv6 unique local)
# and link-local networks, named one by one. Anything else, a translator's prefix (NAT64,
# Teredo, 6to4) or an IPv4-compatible address included, may lead to the public internet.
_PLAINTEXT_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def plaintext_allowed(addresses: Iterable[IPAddress | str]) -> bool:
    """Plaintext (`http://`, `kafka://`) reaches only loopback, private and link-local
    addresses (an IPv4-mapped one judged by its IPv4 address), which are themselves reached
    only with CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1: a public receiver or cluster, or one behind
    a translator, is reached over TLS (`https://`, `kafkas://`), as personal data never
    crosses a public network in clear (docs/decisions.md)."""
    return all(
        _private(a if not isinstance(a, str) else ipaddress.ip_address(a)) for a in addresses
    )


def _private(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in network for network in _PLAINTEXT_NETWORKS if network.version == address.version
    )


def address_allowed(address: IPAddress) -> bool:
    """A public unicast address: not loopback, link-local, private, shared (CGNAT), reserved,
    unspecified or multicast, also when written as an IPv4-mapped IPv6 address or a 6to4 one
    (its embedded IPv4 address decides); never a NAT64, IPv4-compatible or site-local one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif any(address in net for net in _REFUSED_V6):
            return False
    return address.is_global and not address.is_multicast


def literal(host: str) -> IPAddress | None:
    """The address when `host` is one written out (IPv6 without brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to now (OSError when it does not resolve)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_stored(host: str, port: int, field: str, resolver: Resolver = resolve) -> None:
    """EndpointNotAllowed when `host` is, or now resolves to, a non-public address. A name that
    does not resolve (or not within RESOLVE_SECONDS) is accepted: the worker checks again
    before every connection (docs/decisions.md)."""
    found = resolved(host, port, resolver)
    if found is not None and not all(address_allowed(a) for a in found):
        raise EndpointNotAllowed(
            f"{field} reaches a loopback, link-local or private address "
            "(CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1 allows it)",
            field=field,
        )


def check_plaintext(
    host: str,
    port: int,
    field: str,
    *,
    allow_private: bool,
    resolver: Resolver = resolve,
    scheme: str = "kafka",
) -> None:
    """EndpointNotAllowed for a plaintext (`http://`, `kafka://`) endpoint unless private
    endpoints are allowed and `host` is not, and does not now resolve to, a public address
    (plaintext_allowed; an unresolved name is accepted, as by check_stored: the sink checks
    again)."""
    found = resolved(host, port, resolver) if allow_private else None
    if not allow_private or (found is not None and not plaintext_allowed(found)):
        raise EndpointNotAllowed(
            f"{field} is plaintext ({scheme}://): only to a private address with "
            f"CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1; use {scheme}s:// (TLS)",
            field=field,
        )


def resolved(host: str, port: int, resolver: Resolver = resolve) -> list[IPAddress] | None:
    """The address written out, or every address the name resolves to within RESOLVE_SECONDS;
    None when it does not resolve in time."""
    address = literal(host)
    if address is not None:
        return [address]
    try:
        return _resolver.submit(resolver, host, port).result(timeout=RESOLVE_SECONDS)
    except (OSError, UnicodeError, FutureTimeout):
        return None


def check_urls(
    urls: Mapping[str, str | None], *, allow_private: bool, resolver: Resolver = resolve
) -> None:
    """Before a system is stored, outside any transaction (a name may take RESOLVE_SECONDS to
    resolve, and a write transaction must not wait on DNS): each http(s) URL is one the
    delivery client can send to (InvalidEndpoint), each host is public (check_stored) unless
    `allow_private`, and a plaintext endpoint (`http://`, `kafka://`) is private and allowed
    (check_plaintext).
    A URL of another shape is left to datamap.parse to refuse."""
    for field, value in urls.items():
        if value is None:
            continue
        try:
            parts = urlsplit(value)
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if parts.scheme in _PORTS:
            try:
                httpx.URL(value)
            except httpx.InvalidURL:
                raise InvalidEndpoint(
                    f"{field} is not a URL the delivery client can send to", field=field
                ) from None
        if not host:
            continue
        if parts.scheme == "http" or (parts.scheme == "kafka" and is_kafka(value)):
            check_plaintext(
                host,
                port or _PORTS.get(parts.scheme, 0),
                field,
                allow_private=allow_private,
                resolver=resolver,
                scheme=parts.scheme,
            )
        elif not allow_private:
            check_stored(host, port or _PORTS.get(parts.scheme, 80), field, resolver)


def connect_addresses(
    host: str, port: int, *, allow_private: bool = False, resolver: Resolver = resolve
) -> list[str]:
    """The addresses to connect to for `host`, as resolved now: EndpointNotAllowed, unless
    `allow_private`, when any of them is not public (the connection then goes to an address
    checked here, so a second answer cannot swap it); OSError when it does not resolve."""
    address = literal(host)
    found = [address] if address is not None else resolver(host, port)
    if not found or not (allow_private or all(address_allowed(a) for a in found)):
        raise EndpointNotAllowed("the endpoint reaches a non-public address")
    return [str(a) for a in found]
