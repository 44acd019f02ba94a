"""Which addresses a system's endpoints may reach: public ones only (a loopback, link-local,
private or otherwise non-public address is refused as `endpoint_not_allowed`), unless
CONSENTRY_ALLOW_PRIVATE_ENDPOINTS says otherwise. Checked when a system is stored, and again
by the delivery worker on the address it connects to (a name may resolve elsewhere later)."""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from consentry.errors import EndpointNotAllowed

# How long storing a system waits for a name to resolve; past it the name counts as unresolved.
RESOLVE_SECONDS = 2.0
_resolver = ThreadPoolExecutor(max_workers=2, thread_name_prefix="consentry-resolve")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(address: IPAddress) -> bool:
    """A public unicast address: not loopback, link-local, private, shared (CGNAT), reserved,
    unspecified or multicast, also when written as an IPv4-mapped IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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


def check_stored(host: str, port: int, field: str) -> None:
    """EndpointNotAllowed when `host` is, or now resolves to, a non-public address. A name that
    does not resolve (or not within RESOLVE_SECONDS) is accepted: the worker checks again
    before every connection (docs/decisions.md)."""
    address = literal(host)
    if address is not None:
        found = [address]
    else:
        try:
            found = _resolver.submit(resolve, host, port).result(timeout=RESOLVE_SECONDS)
        except (OSError, UnicodeError, FutureTimeout):
            return
    if not all(address_allowed(a) for a in found):
        raise EndpointNotAllowed(
            f"{field} reaches a loopback, link-local or private address "
            "(CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1 allows it)",
            field=field,
        )


def connect_address(host: str, port: int) -> str:
    """The address to connect to for `host`, checked: EndpointNotAllowed when any address the
    name resolves to now is not public (the connection then goes to the address checked, so a
    second answer cannot swap it); OSError when it does not resolve."""
    address = literal(host)
    found = [address] if address is not None else resolve(host, port)
    if not found or not all(address_allowed(a) for a in found):
        raise EndpointNotAllowed("the endpoint reaches a non-public address")
    return str(found[0])
