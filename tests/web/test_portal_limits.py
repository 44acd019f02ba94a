"""The portal's rate limit per session (CONSENTRY_PORTAL_RATE_LIMIT), on both back-ends: over
it, a page saying when to try again (429, Retry-After); withdrawing is never held back."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient

from consentry.settings import Settings
from tests.conftest import auth
from tests.dsr.conftest import email, grant
from tests.dsr.test_entry import mint

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dsr_poll_seconds=0, portal_rate_limit=0.01)


def enter(client: TestClient, name: str) -> TestClient:
    url = mint(client, auth(), subject=email(name))["url"]
    browser = TestClient(client.app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000))
    resp = browser.get(url.removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return browser


def test_a_session_over_its_limit_is_asked_to_wait_but_may_always_withdraw(
    client: TestClient,
) -> None:
    notice = {"version": "1", "text": "We count visits.", "purposes": ["analytics"]}
    assert client.put("/v1/notices/main", headers=auth(), json=notice).status_code == 201
    grant(client, email("ada"), "analytics")
    browser = enter(client, "ada")
    page = browser.get("/portal")  # a burst of one, a token every 100 s
    assert page.status_code == 200
    found = _CSRF.search(page.text)
    assert found is not None
    csrf = found.group(1)
    held = browser.get("/portal")
    assert held.status_code == 429
    assert int(held.headers["retry-after"]) >= 1
    assert "try again" in held.text
    granted = browser.post(
        "/portal/consent", data={"csrf": csrf, "purpose": "analytics", "choice": "granted"}
    )
    assert granted.status_code == 429
    for _ in range(3):
        resp = browser.post(
            "/portal/consent",
            data={"csrf": csrf, "purpose": "analytics", "choice": "withdrawn"},
            follow_redirects=False,
        )
        assert resp.status_code == 303, resp.text
    # Another person's session has a bucket of its own.
    grant(client, email("bo"), "analytics")
    assert enter(client, "bo").get("/portal").status_code == 200
