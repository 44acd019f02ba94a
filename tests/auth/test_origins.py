"""auth/origins.py: a browser key's origins in the spelling browsers send, https only but for
loopback development origins."""

from __future__ import annotations

import pytest

from consentry.auth.origins import canonical, development, origins_of
from consentry.errors import InvalidRequest


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("http://[0:0:0:0:0:0:0:1]:3000", "http://[::1]:3000"),
    ],
)
def test_origins_are_kept_as_browsers_send_them(given: str, expected: str) -> None:
    assert canonical(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "http://shop.example.com",  # plain http off loopback
        "http://10.0.0.5",
        "https://shop.example.com/checkout",  # a path
        "https://shop.example.com?x=1",
        "https://*.example.com",
        "*",
        "null",
        "shop.example.com",
        "ftp://shop.example.com",
        "https://user@shop.example.com",
        "https://shop.example.com:0",
        "https://shop.example.com:70000",
        "https://-bad-.example.com",
        "https://" + "a" * 200 + ".com",
    ],
)
def test_anything_else_is_refused(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        canonical(bad)


def test_a_key_lists_one_to_twenty_origins_each_once() -> None:
    assert origins_of(["https://a.example.com", "https://A.example.com/"]) == (
        "https://a.example.com",
    )
    with pytest.raises(InvalidRequest):
        origins_of([])
    with pytest.raises(InvalidRequest):
        origins_of([f"https://s{i}.example.com" for i in range(21)])
    assert development("http://localhost:5173")
    assert not development("https://shop.example.com")
