"""The privacy portal in Chromium with mail, on both back-ends: a code mailed to the loopback
SMTP server, typed into the portal, opens it; a copy the customer asked for, once verified and
completed, is downloaded from the portal and holds the customer's data. Every step from the
keyboard; axe-core finds nothing serious on any page state; the screenshot the README shows
of the download."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from consentry.errors import PortalCodeInvalid
from consentry.settings import Settings
from tests.conftest import auth
from tests.dsr.conftest import SCHEMA
from tests.dsr.mailcodes import code_in, other_than, with_mail
from tests.e2e.browser import axe, screenshot
from tests.mailserver import Mailbox
from tests.servers import LiveServer

ADDRESS = "nia@example.com"
NOTICE = {
    "version": "1",
    "text": "We count your visits to improve the shop.",
    "purposes": ["analytics", "personalization"],
}


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    """Mail to the loopback SMTP server; requests advance when the test runs the runner."""
    return with_mail(dataclasses.replace(settings, dsr_poll_seconds=0), mail_port)


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings


@contextlib.contextmanager
def _customer(server: LiveServer) -> Iterator[httpx.Client]:
    """The API of `server`, with a notice, a schema, and a customer known by ADDRESS who
    consented to analytics and chatted twice."""
    with httpx.Client(base_url=server.url, headers=auth()) as api:
        _arrange(api)
        yield api


def _arrange(api: httpx.Client) -> None:
    assert api.put("/v1/notices/main", json=NOTICE).status_code == 201
    assert api.put("/v1/schemas/chat", json=SCHEMA).status_code == 201
    subject = {"identities": [{"type": "email", "value": ADDRESS}]}
    consent = {
        "subject": subject,
        "purposes": {"analytics": "granted"},
        "source": "web",
        "notice": {"id": "main", "version": "1"},
    }
    assert api.post("/v1/consents", json=consent).status_code == 200
    events = [
        {
            "event_id": f"nia-{i}",
            "event_type": "chat",
            "occurred_at": "2026-11-20T10:00:00Z",
            "subject": subject,
            "properties": {"topic": "delivery", "message": f"Parcel number {i} is late"},
        }
        for i in range(2)
    ]
    assert api.post("/v1/events", json={"events": events}).status_code == 200


def _ask_for_a_code(server: LiveServer, page: Page, mailbox: Mailbox) -> str:
    """At the portal's front door, ask for a code by e-mail (keyboard only); the code the
    loopback SMTP server received."""
    page.goto(f"{server.url}/portal")
    expect(page.get_by_role("heading", name="Sign in with a code by e-mail")).to_be_visible()
    axe(page)
    before = len(mailbox.received)
    page.get_by_label("Your e-mail address").focus()
    page.keyboard.type(ADDRESS)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert ADDRESS not in page.url
    axe(page)
    # The background sender takes the code from the durable queue to the SMTP server.
    code = code_in(mailbox.wait_for(before + 1)[-1])
    assert mailbox.received[-1].rcpt_tos == [ADDRESS]
    return code


def _type_the_code(page: Page, code: str) -> None:
    page.get_by_label("Code").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def _enter_by_code(server: LiveServer, page: Page, mailbox: Mailbox) -> None:
    _type_the_code(page, _ask_for_a_code(server, page, mailbox))
    expect(page.get_by_role("heading", name="What you agreed to")).to_be_visible()
    assert page.url == f"{server.url}/portal"


def test_a_mailed_code_typed_in_opens_the_portal(
    live_server: LiveServer, page: Page, mailbox: Mailbox
) -> None:
    with _customer(live_server):
        # A wrong code first: refused with a page that leads back.
        code = _ask_for_a_code(live_server, page, mailbox)
        _type_the_code(page, other_than(code))
        expect(page.get_by_role("heading", name=PortalCodeInvalid.title)).to_be_visible()
        axe(page)
        page.get_by_role("link", name="Back").focus()
        page.keyboard.press("Enter")
        # Back at the front door (its load ended before the next step navigates again).
        expect(page.get_by_role("heading", name="Sign in with a code by e-mail")).to_be_visible()
        # Asked again, a new code replaces the first; typed in, it opens the portal.
        _enter_by_code(live_server, page, mailbox)
    assert len(mailbox.received) == 2
    expect(page.locator('[data-purpose="analytics"] [data-state]')).to_have_text("allowed")
    expect(page.get_by_text("Nothing to download yet")).to_be_visible()
    axe(page)


def test_a_copy_asked_for_is_downloaded_with_the_customers_data(
    live_server: LiveServer, page: Page, mailbox: Mailbox, tmp_path: Path
) -> None:
    with _customer(live_server) as api:
        _enter_by_code(live_server, page, mailbox)
        copy = page.get_by_label("A copy of my data to take elsewhere")
        copy.focus()
        page.keyboard.press("Space")
        expect(copy).to_be_checked()
        page.get_by_role("button", name="Send my request").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/portal#requests")
        # A code proves `reasonable`; a copy needs `high`: it waits, visibly, for an operator.
        expect(page.get_by_text("waiting for a check of who you are")).to_be_visible()
        axe(page)
        (made,) = api.get("/v1/requests").json()["items"]
        assert made["type"] == "portability"
        rid = made["request_id"]
        verified = api.post(
            f"/v1/requests/{rid}/verify", json={"method": "id_document", "level": "high"}
        )
        assert verified.status_code == 200, verified.text
        live_server.runtime.runner.run_pending()
        assert api.get(f"/v1/requests/{rid}").json()["status"] == "completed"

        page.reload()
        row = page.locator(f'[data-download="{rid}"]')
        expect(row).to_be_visible()
        axe(page)
        row.scroll_into_view_if_needed()
        screenshot(page, "portal-download")
        button = row.get_by_role("button", name="Download")
        button.focus()
        with page.expect_download() as info:
            page.keyboard.press("Enter")
        download = info.value
        assert download.suggested_filename == f"my-data-{rid}.json"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        held = json.loads(saved.read_bytes())
        # The customer's data: their identity, their consent, what they wrote.
        assert held["request_id"] == rid
        assert {"type": "email", "value": ADDRESS} in held["identities"]
        assert held["consent"]["analytics"]["state"] == "granted"
        messages = sorted(e["properties"]["message"] for e in held["events"])
        assert messages == ["Parcel number 0 is late", "Parcel number 1 is late"]
        # The page stayed where it was, and still passes.
        expect(page.get_by_role("heading", name="Download my data")).to_be_visible()
        axe(page)
