"""Branding by settings: the name, a logo file served by the product, a privacy-policy link
on every page; settings that would show something else are refused at start."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.errors import InvalidSetting
from consentry.settings import Settings
from consentry.settings.rules import LOGO_MAX_BYTES
from tests.web.test_portal import visitor


def png() -> bytes:
    """A 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x60\xa0"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def branded(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    wanted = dataclasses.replace(
        settings,
        brand_name="Example Shop",
        brand_logo=str(logo),
        privacy_policy_url="https://shop.example.com/privacy",
    )
    wanted.validate()
    with TestClient(create_app(wanted)) as client:
        yield visitor(client)


def test_every_page_shows_the_brand(branded: TestClient) -> None:
    for path in ("/signin", "/portal", "/enrol?token=nothing"):
        page = branded.get(path)
        assert "Example Shop" in page.text, path
        assert '<img class="logo" src="/brand/logo" alt="" height="32">' in page.text, path
        assert '<a href="https://shop.example.com/privacy">Privacy policy</a>' in page.text, path
        assert "<title>" in page.text
        assert "· Example Shop</title>" in page.text, path
    logo = branded.get("/brand/logo")
    assert logo.status_code == 200
    assert logo.content == png()
    assert logo.headers["content-type"] == "image/png"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert logo.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )


def test_without_a_logo_or_a_policy_nothing_is_shown(client: TestClient) -> None:
    page = visitor(client).get("/signin").text
    assert 'class="logo"' not in page
    assert "Privacy policy" not in page
    assert visitor(client).get("/brand/logo").status_code == 404


@pytest.mark.parametrize(
    "policy",
    [
        "javascript:alert(1)",
        "http://shop.example.com/privacy",
        "//shop.example.com/privacy",
        'https://shop.example.com/"onmouseover=x',
        "https://shop.example.com/a b",
        "privacy.html",
    ],
)
def test_a_policy_link_elsewhere_than_https_or_this_host_is_refused(
    settings: Settings, policy: str
) -> None:
    with pytest.raises(InvalidSetting, match="CONSENTRY_PRIVACY_POLICY_URL"):
        dataclasses.replace(settings, privacy_policy_url=policy).validate()


def test_a_policy_path_on_this_host_is_accepted(settings: Settings) -> None:
    dataclasses.replace(settings, privacy_policy_url="/privacy").validate()


@pytest.mark.parametrize("case", ["suffix", "missing", "empty", "large", "directory"])
def test_a_logo_that_cannot_be_shown_is_refused(
    settings: Settings, tmp_path: Path, case: str
) -> None:
    path = tmp_path / ("logo.gif" if case == "suffix" else "logo.png")
    if case == "suffix":
        path.write_bytes(b"GIF89a")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "large":
        path.write_bytes(png() + b"\x00" * LOGO_MAX_BYTES)
    elif case == "directory":
        path.mkdir()
    with pytest.raises(InvalidSetting, match="CONSENTRY_BRAND_LOGO"):
        dataclasses.replace(settings, brand_logo=str(path)).validate()
