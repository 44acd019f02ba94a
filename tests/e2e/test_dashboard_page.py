"""The dashboard in Chromium: a person enrols from their link (password, then the
authenticator), signs in with both factors, sees every figure the API gives, verifies a
request from its row; five failed sign-ins lock the account; axe-core on every page; the
screenshots the README shows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Page, expect

from consentry.people.models import PersonRole
from tests.conftest import auth
from tests.e2e.browser import axe, screenshot
from tests.servers import LiveServer

PASSWORD = "a long passphrase for the console"


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=auth()) as client:
        yield client


def _fresh_code(secret: str) -> str:
    """The authenticator's code, from a 30-second step not used yet (a code is used once)."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    # Leave at least 2 s of the step, so the server reads the same one.
    if 30 - now % 30 < 2:
        time.sleep(30 - now % 30 + 0.1)
    return totp.now()


def _enrol(page: Page, server: LiveServer, who: str, role: PersonRole) -> str:
    made = server.runtime.people.create(who, role, actor="cli")
    parts = urlsplit(made.url)
    page.goto(f"{server.url}{parts.path}?{parts.query}")
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    axe(page)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("heading", name="Add your second factor")).to_be_visible()
    axe(page)
    secret = page.locator("[data-totp-secret]").inner_text().strip()
    page.get_by_label("The code the app shows now").fill(_fresh_code(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    return secret


def _sign_in(page: Page, server: LiveServer, who: str, secret: str) -> None:
    page.goto(f"{server.url}/signin")
    page.get_by_label("E-mail").fill(who)
    page.get_by_label("Password").fill(PASSWORD)
    # The code used to confirm the enrolment is spent: wait for the next one.
    time.sleep(30 - time.time() % 30 + 0.2)
    page.get_by_label("Code from your authenticator app").fill(_fresh_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Compliance dashboard")).to_be_visible()


def _figure(page: Page, name: str) -> str:
    """The big number of a figure's card."""
    return page.locator(f'[data-figure="{name}"] .figure').inner_text().strip()


def test_enrol_sign_in_and_act_from_the_dashboard(
    live_server: LiveServer, page: Page, api: httpx.Client
) -> None:
    notice = {"version": "1", "text": "We count visits.", "purposes": ["analytics"]}
    assert api.put("/v1/notices/main", json=notice).status_code == 201
    subject = {"identities": [{"type": "email", "value": "kim@example.com"}]}
    body = {
        "subject": subject,
        "purposes": {"analytics": "granted"},
        "source": "web",
        "notice": {"id": "main", "version": "1"},
    }
    assert api.post("/v1/consents", json=body).status_code == 200
    made = api.post(
        "/v1/requests", json={"type": "access", "subject": subject, "jurisdiction": "EU"}
    )
    rid = made.json()["request_id"]
    aware = datetime.now(UTC) - timedelta(hours=3)
    breach = {
        "detected_at": aware.isoformat().replace("+00:00", "Z"),
        "aware_at": aware.isoformat().replace("+00:00", "Z"),
        "description": "A laptop with an export was stolen.",
        "nature": "confidentiality",
        "data_categories": ["user.contact.email"],
        "risk": "risk",
        "keys_compromised": False,
    }
    assert api.post("/v1/incidents", json=breach).status_code == 201

    secret = _enrol(page, live_server, "dpo@example.com", PersonRole.DPO)
    _sign_in(page, live_server, "dpo@example.com", secret)
    axe(page)
    screenshot(page, "dashboard")

    summary = api.get("/v1/compliance/summary").json()
    assert _figure(page, "processed_without_consent") == str(summary["processed_without_consent"])
    assert _figure(page, "requests_open") == str(summary["requests"]["open"])
    overdue = page.locator('[data-figure="requests_overdue"]').inner_text()
    assert overdue == f"{summary['requests']['overdue']} overdue"
    assert _figure(page, "incidents_open") == str(summary["incidents"]["open"])
    assert _figure(page, "reconsent_due") == str(summary["reconsent_due"]["subjects"])
    accepted = page.locator('[data-figure="events_accepted"]').inner_text()
    assert accepted == f"Accepted: {summary['events']['accepted']}"
    for purpose, counts in summary["coverage"].items():
        cells = page.locator(f'tr[data-purpose="{purpose}"] td').all_inner_texts()
        assert cells[:5] == [
            str(counts[k]) for k in ("granted", "denied", "withdrawn", "expired", "never_asked")
        ]
    for status, n in summary["status_counts"].items():
        assert page.locator(f'tr[data-status="{status}"] td').inner_text() == str(n)

    # The authority's 72-hour clock counts in the page (static/countdown.js, allowed by the
    # pages' CSP): what the page shows is put back within a second.
    countdown = page.locator("time[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^2 d 2[01] h \d+ min left$"))
    countdown.evaluate("el => { el.textContent = 'stale'; }")
    expect(countdown).to_have_text(re.compile(r"left$"), timeout=3000)

    row = page.locator(f'tr[data-request="{rid}"]')
    row.get_by_text("Act on").click()
    row.get_by_label("How you checked who asked").fill("signed in to the shop")
    row.get_by_label("Level").select_option("reasonable")
    row.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Compliance dashboard")).to_be_visible()
    got = api.get(f"/v1/requests/{rid}").json()
    assert got["verification"]["level"] == "reasonable"
    assert got["verification"]["verified_at"] is not None

    # The audit log, verified from the keyboard: the dashboard then shows that verification.
    expect(page.locator('[data-figure="verification"]')).to_have_text("Never verified.")
    page.get_by_role("button", name="Verify now").focus()
    page.keyboard.press("Enter")
    shown = page.locator('[data-figure="verification"]')
    expect(shown).to_contain_text("Intact")
    expect(shown).to_contain_text("person:")
    axe(page)

    page.get_by_role("link", name="Consent report").click()
    expect(page.get_by_role("heading", name="Consent report")).to_be_visible()
    axe(page)
    assert page.locator("tr[data-entry]").count() == len(
        api.get("/v1/consents/report").json()["items"]
    )


def test_five_failures_lock_the_account(live_server: LiveServer, page: Page) -> None:
    secret = _enrol(page, live_server, "ops@example.com", PersonRole.OPERATOR)
    page.goto(f"{live_server.url}/signin")
    axe(page)
    screenshot(page, "signin")
    for _ in range(5):
        page.get_by_label("E-mail").fill("ops@example.com")
        page.get_by_label("Password").fill("not the password at all")
        page.get_by_label("Code from your authenticator app").fill("123456")
        page.get_by_role("button", name="Sign in").click()
    page.get_by_label("E-mail").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(_fresh_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("locked")
    axe(page)
