"""Web origins of browser keys: what may be listed, in one canonical spelling."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from consentry.errors import InvalidRequest

MAX_ORIGINS = 20
MAX_ORIGIN = 200
# Served over plain http only on the developer's own machine (docs/decisions.md).
DEVELOPMENT_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical(origin: str) -> str:
    """`origin` as browsers send it in the Origin header (scheme://host[:port], lower case,
    no default port, no path), or InvalidRequest: https anywhere, http only on loopback."""
    if len(origin) > MAX_ORIGIN:
        raise InvalidRequest(f"an origin is at most {MAX_ORIGIN} characters")
    match = _ORIGIN.fullmatch(origin.strip().lower().rstrip("/"))
    if match is None:
        raise InvalidRequest(
            f"{origin!r} is not a web origin: scheme://host[:port], with no path, e.g. "
            "https://shop.example.com"
        )
    scheme, host, port = match.groups()
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidRequest(f"{origin!r}: the host is not an address") from None
        host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
    elif not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise InvalidRequest(f"{origin!r}: the host is not a DNS name")
    if scheme == "http" and host not in DEVELOPMENT_HOSTS:
        raise InvalidRequest(
            f"{origin!r}: browser keys are honoured over https only (http only for localhost, "
            "127.0.0.1 and [::1], in development)"
        )
    if port is not None:
        number = int(port)
        if not 0 < number < 65536:
            raise InvalidRequest(f"{origin!r}: the port is out of range")
        if number == _DEFAULT_PORTS[scheme]:
            port = None
    return f"{scheme}://{host}" + (f":{int(port)}" if port is not None else "")


def origins_of(listed: Iterable[str]) -> tuple[str, ...]:
    """The canonical origins, each once, in the order given; at least one, at most 20."""
    out = tuple(dict.fromkeys(canonical(o) for o in listed))
    if not out:
        raise InvalidRequest("a browser key needs at least one origin (--origin)")
    if len(out) > MAX_ORIGINS:
        raise InvalidRequest(f"at most {MAX_ORIGINS} origins a key")
    return out


def development(origin: str) -> bool:
    """Whether `origin` is one of the plain-http development origins."""
    return origin.startswith("http://")
