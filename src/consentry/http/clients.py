"""Who is asking: a loopback client reached directly, or a request a proxy forwarded."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request

# Headers a proxy adds to what it forwards.
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def loopback(request: Request) -> bool:
    """Whether the connection comes from this machine (a proxy on it counts as this machine:
    see `forwarded`)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def forwarded(request: Request) -> bool:
    """Whether a proxy says it forwarded the request for someone else."""
    return any(name in request.headers for name in FORWARDED)
