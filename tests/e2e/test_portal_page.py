"""The privacy portal in Chromium: a minted link opens it (and leaves the address bar), a
toggle works from the keyboard and writes the ledger, erasure is confirmed first; axe-core
finds nothing serious on any of its pages; the screenshots the README shows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import auth
from tests.e2e.browser import axe, screenshot
from tests.servers import LiveServer

NOTICES = (
    {
        "version": "1",
        "text": "We count your visits to improve the shop.",
        "purposes": ["analytics"],
    },
    {
        "version": "2",
        "text": "We also tailor offers to what you look at.",
        "purposes": ["analytics", "personalization"],
    },
)


@contextlib.contextmanager
def _shop(server: LiveServer) -> Iterator[httpx.Client]:
    """The API of `server`, with the shop's notices published."""
    with httpx.Client(base_url=server.url, headers=auth()) as api:
        for notice in NOTICES:
            assert api.put("/v1/notices/main", json=notice).status_code == 201
        yield api


def _link(api: httpx.Client, server: LiveServer, name: str) -> str:
    subject = {"identities": [{"type": "email", "value": f"{name}@example.com"}]}
    body = {
        "subject": subject,
        "purposes": {"analytics": "granted"},
        "source": "web",
        "notice": {"id": "main", "version": "1"},
    }
    assert api.post("/v1/consents", json=body).status_code == 200
    minted = api.post("/v1/portal-links", json={"subject": subject}).json()
    parts = urlsplit(minted["url"])
    return f"{server.url}{parts.path}?{parts.query}"


def _ledger(api: httpx.Client) -> list[dict[str, Any]]:
    return list(api.get("/v1/consents/report").json()["items"])


def test_the_portal_opened_by_a_link_and_used_from_the_keyboard(
    live_server: LiveServer, page: Page
) -> None:
    with _shop(live_server) as api:
        _use_the_portal(live_server, page, api)


def _use_the_portal(live_server: LiveServer, page: Page, api: httpx.Client) -> None:
    page.goto(_link(api, live_server, "ada"))
    expect(page.get_by_role("heading", name="Your privacy choices")).to_be_visible()
    assert "link=" not in page.url
    assert page.url.endswith("/portal")
    expect(page.locator('[data-purpose="analytics"] [data-state]')).to_have_text("allowed")
    axe(page)
    screenshot(page, "portal")

    before = len(_ledger(api))
    allow = page.get_by_role("button", name="Allow Personalisation")
    allow.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/portal#purpose-personalization")
    expect(page.locator('[data-purpose="personalization"] [data-state]')).to_have_text("allowed")
    entries = _ledger(api)
    assert len(entries) == before + 1
    assert (entries[-1]["purpose"], entries[-1]["state"], entries[-1]["source"]) == (
        "personalization",
        "granted",
        "web",
    )

    page.get_by_label("Erase my data").check()
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("heading", name="Erase your data?")).to_be_visible()
    axe(page)
    page.get_by_role("link", name="No, go back").click()
    assert api.get("/v1/requests").json()["items"] == []


def test_the_way_in_without_a_session(live_server: LiveServer, page: Page) -> None:
    page.goto(f"{live_server.url}/portal")
    expect(page.get_by_role("heading", name="Your privacy choices")).to_be_visible()
    axe(page)
    screenshot(page, "portal-entry")
    page.goto(f"{live_server.url}/portal?link=not-a-link")
    expect(page.get_by_role("heading", name="The portal link is not valid")).to_be_visible()
    axe(page)


def test_the_portal_on_each_back_end(backend_live_server: LiveServer, page: Page) -> None:
    with _shop(backend_live_server) as api:
        page.goto(_link(api, backend_live_server, "bo"))
    expect(page.locator('[data-purpose="analytics"] [data-state]')).to_have_text("allowed")
