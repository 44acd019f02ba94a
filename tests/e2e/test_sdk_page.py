"""The browser SDK in Chromium, on the example shop (sdk/js/example/) served from its own
origin with a browser key for it: nothing leaves before consent, a switch writes the ledger and
lets events flow, GPC is recorded, a withdrawal stops events at once, another origin is refused
by CORS, a stale token is refreshed; the panel works from the keyboard and passes axe-core."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from consentry.auth import identity
from tests.conftest import auth
from tests.e2e.browser import axe, screenshot
from tests.servers import LiveServer

SITE_ROOT = Path(__file__).resolve().parents[2] / "sdk" / "js"
NOTICE = {
    "version": "1",
    "text": "Example Shop measures visits, tailors offers, e-mails offers and shares data "
    "with advertising partners only with your consent.",
    "purposes": ["analytics", "personalization", "marketing", "advertising"],
}
SCHEMAS = {
    "page_view": {
        "purposes": ["analytics"],
        "fields": {
            "path": {"type": "string", "category": "system.operations", "treatment": "keep"}
        },
    },
    "basket_add": {
        "purposes": ["analytics", "personalization"],
        "fields": {
            "item": {"type": "string", "category": "system.operations", "treatment": "keep"}
        },
    },
}
GPC_SCRIPT = (
    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _site() -> Iterator[int]:
    """sdk/js/ served by a plain file server on a loopback port of its own: the shop's origin."""
    handler = functools.partial(_Quiet, directory=str(SITE_ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Shop:
    """The gateway's admin API, the shop's origin and browser key, and what the page asked of
    the gateway (method, path), in order."""

    api: httpx.Client
    gateway: str
    origin: str
    key: str
    port: int
    sent: list[tuple[str, str]] = field(default_factory=list)

    def url(self, origin: str | None = None) -> str:
        return f"{origin or self.origin}/example/index.html?endpoint={self.gateway}&key={self.key}"

    def watch(self, page: Page) -> None:
        def record(request: Request) -> None:
            if request.url.startswith(self.gateway) and request.method != "OPTIONS":
                self.sent.append((request.method, request.url[len(self.gateway) :]))

        page.on("request", record)

    def paths(self) -> list[str]:
        return [f"{method} {path.split('?')[0]}" for method, path in self.sent]

    def stored(self, purpose: str = "analytics") -> list[str]:
        answer = self.api.get("/v1/events", params={"purpose": purpose})
        assert answer.status_code == 200, answer.text
        return [item["event_type"] for item in answer.json()["items"]]

    def consent(self, subject_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/v1/subjects/{subject_id}/consent")
        assert answer.status_code == 200, answer.text
        purposes: dict[str, Any] = answer.json()["purposes"]
        return purposes


@pytest.fixture
def shop(live_server: LiveServer) -> Iterator[Shop]:
    with _site() as port, httpx.Client(base_url=live_server.url, headers=auth()) as api:
        assert api.put("/v1/notices/web", json=NOTICE).status_code == 201
        for event_type, schema in SCHEMAS.items():
            assert api.put(f"/v1/schemas/{event_type}", json=schema).status_code == 201
        origin = f"http://127.0.0.1:{port}"
        minted = api.post(
            "/v1/api-keys", json={"role": "browser", "label": "shop", "origins": [origin]}
        )
        assert minted.status_code == 201, minted.text
        yield Shop(api, live_server.url, origin, minted.json()["key"], port)


def _until(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def _open(page: Page, shop: Shop, origin: str | None = None) -> None:
    shop.watch(page)
    page.goto(shop.url(origin))
    expect(page.get_by_role("switch", name="Analytics")).to_be_visible()


def _switch(page: Page, name: str) -> None:
    """Flip a purpose's switch from the keyboard, and wait until the panel says it is done."""
    switch = page.get_by_role("switch", name=name)
    switch.focus()
    page.keyboard.press("Space")
    expect(switch).to_be_enabled()


def _storage(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        "() => ({local: {...localStorage}, session: {...sessionStorage}, cookie: document.cookie})"
    )
    return found


def test_nothing_before_consent_then_a_switch_writes_the_ledger_and_events_flow(
    page: Page, shop: Shop
) -> None:
    _open(page, shop)
    page.get_by_role("button", name="Add the scarf to the basket").click()
    page.wait_for_timeout(1500)  # past the SDK's flush interval
    assert shop.sent == []
    assert _storage(page) == {"local": {}, "session": {}, "cookie": ""}
    axe(page)

    _switch(page, "Analytics")
    expect(page.locator("#status")).to_have_text("Analytics is on.")
    state = page.evaluate("() => Consentry.state()")
    assert state["granted"] == ["analytics"]
    ledger = shop.consent(state["subject_id"])
    assert ledger["analytics"]["state"] == "granted"
    assert ledger["analytics"]["source"] == "web"
    assert ledger["analytics"]["notice_sha256"]
    # Only now is an id kept on the device: the one the ledger knows the visitor by.
    kept = _storage(page)["local"]
    assert list(kept) == ["consentry"]
    assert state["subject_id"] in kept["consentry"]

    page.evaluate("() => Consentry.flush()")
    _until(lambda: len(shop.stored()) == 2, "the held events")
    assert sorted(shop.stored()) == ["basket_add", "page_view"]
    assert shop.paths()[:2] == ["POST /v1/consents", "POST /v1/events"]
    axe(page)
    screenshot(page, "sdk-example")


def test_gpc_is_recorded_and_shown(page: Page, shop: Shop) -> None:
    page.context.add_init_script(GPC_SCRIPT)
    page.set_extra_http_headers({"Sec-GPC": "1"})
    _open(page, shop)
    _switch(page, "Analytics")
    state = page.evaluate("() => Consentry.state()")
    assert state["gpc"] is True
    assert state["gpc_honored"] is True
    ledger = shop.consent(state["subject_id"])
    assert ledger["advertising"]["state"] == "denied"
    assert ledger["advertising"]["source"] == "gpc"
    expect(page.locator("#gpc-note")).to_be_visible()

    # A sale or share stays off: GPC wins over a switch.
    _switch(page, "Advertising")
    expect(page.locator("#status")).to_have_text(
        "Advertising stays off: your browser asked us not to sell or share."
    )
    expect(page.get_by_role("switch", name="Advertising")).not_to_be_checked()
    assert shop.consent(state["subject_id"])["advertising"]["state"] == "denied"
    axe(page)


def test_a_withdrawal_stops_events_at_once(page: Page, shop: Shop) -> None:
    _open(page, shop)
    _switch(page, "Analytics")
    page.evaluate("() => Consentry.flush()")
    _until(lambda: shop.stored() == ["page_view"], "the page view")

    page.get_by_role("button", name="Add the scarf to the basket").click()  # queued, not sent
    _switch(page, "Analytics")
    expect(page.locator("#status")).to_have_text("Analytics is off.")
    page.get_by_role("button", name="Add the scarf to the basket").click()
    page.evaluate("() => Consentry.flush()")
    page.wait_for_timeout(1500)
    assert shop.paths()[-1] == "POST /v1/consents/withdraw"
    assert shop.paths().count("POST /v1/events") == 1
    state = page.evaluate("() => Consentry.state()")
    assert shop.consent(state["subject_id"])["analytics"]["state"] == "withdrawn"
    assert _storage(page)["local"] == {"consentry": '{"refused":true}'}


def test_another_origin_is_refused_by_cors(page: Page, shop: Shop) -> None:
    # The same page from an origin the key does not list (localhost is not 127.0.0.1).
    other = f"http://localhost:{shop.port}"
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    _open(page, shop, other)
    _switch(page, "Analytics")
    expect(page.locator("#status")).to_have_text(
        "Analytics could not be changed (network_error). Please try again."
    )
    expect(page.get_by_role("switch", name="Analytics")).not_to_be_checked()
    assert any("CORS" in m for m in messages), messages
    assert shop.api.get("/v1/consents/report").json()["items"] == []
    # And the gateway refuses the key from there even without the browser's help.
    refused = httpx.post(
        f"{shop.gateway}/v1/consents",
        headers={
            "Origin": other,
            "X-Consentry-Key": shop.key,
            "X-Consentry-Subject": "cookie_id=probe",
        },
        json={
            "subject": {"identities": [{"type": "cookie_id", "value": "probe"}]},
            "purposes": {"analytics": "granted"},
            "source": "web",
            "notice": {"id": "web", "version": "1"},
        },
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_a_stale_token_is_refreshed_and_the_events_sent_again(page: Page, shop: Shop) -> None:
    _open(page, shop)
    _switch(page, "Analytics")
    page.evaluate("() => Consentry.flush()")
    _until(lambda: shop.stored() == ["page_view"], "the page view")
    state = page.evaluate("() => Consentry.state()")

    # Elsewhere (the portal, a call centre) the ledger moves on: the page's token is stale.
    cookie_id = page.evaluate("() => JSON.parse(localStorage.consentry).cookie_id")
    moved = shop.api.post(
        "/v1/consents",
        json={
            "subject": {"identities": [{"type": "cookie_id", "value": cookie_id}]},
            "purposes": {"personalization": "granted"},
            "source": "agent",
            "notice": {"id": "web", "version": "1"},
        },
    )
    assert moved.status_code == 200, moved.text
    shop.sent.clear()
    page.get_by_role("button", name="Add the scarf to the basket").click()
    page.evaluate("() => Consentry.flush()")
    _until(lambda: "basket_add" in shop.stored(), "the basket event")
    assert shop.paths() == [
        "POST /v1/events",
        f"GET /v1/subjects/{state['subject_id']}/consent/token",
        "POST /v1/events",
    ]
    fresh = page.evaluate("() => Consentry.state()")
    assert fresh["version"] > state["version"]
    assert fresh["granted"] == ["analytics", "personalization"]
    expect(page.get_by_role("switch", name="Personalization")).to_be_checked()


def test_the_gateway_serves_the_sdk_to_any_page_as_script_and_module(
    page: Page, shop: Shop
) -> None:
    page.goto(f"{shop.origin}/example/notice.html")
    loaded = page.evaluate(
        """async (gateway) => {
            const module = await import(gateway + "/sdk/consentry.mjs");
            await new Promise((resolve, reject) => {
                const script = document.createElement("script");
                script.src = gateway + "/sdk/consentry.js";
                script.onload = resolve;
                script.onerror = reject;
                document.head.append(script);
            });
            return [typeof module.default.init, typeof module.track, typeof window.Consentry.init];
        }""",
        shop.gateway,
    )
    assert loaded == ["function", "function", "function"]


def test_what_is_queued_leaves_when_the_page_does(page: Page, shop: Shop) -> None:
    _open(page, shop)
    _switch(page, "Analytics")
    page.evaluate("() => Consentry.flush()")
    _until(lambda: shop.stored() == ["page_view"], "the page view")
    page.get_by_role("button", name="Add the scarf to the basket").click()
    # Queued for the flush interval; the visitor leaves before it ends.
    page.get_by_role("link", name="Read the privacy notice (version 1)").click()
    expect(page.get_by_role("heading", name="Privacy notice (version 1)")).to_be_visible()
    _until(lambda: "basket_add" in shop.stored(), "the event sent as the page went")


def test_a_signed_in_customer_vouched_for_by_the_site(
    page: Page, shop: Shop, live_server: LiveServer
) -> None:
    runtime = live_server.runtime
    with runtime.store.write() as conn:
        _, secret = runtime.identity_secrets.create(conn, "shop", actor="test")
    expires_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    vouched = {
        "customer_id": "C-1001",
        "identity_proof": identity.proof(secret, "C-1001", expires_at),
        "expires_at": expires_at,
    }
    page.context.add_init_script(GPC_SCRIPT)
    shop.watch(page)
    page.goto(f"{shop.origin}/example/notice.html")
    page.add_script_tag(url="../consentry.js")
    run = """async ([gateway, key, subject]) => {
        const sdk = Consentry.create();
        const errors = [];
        sdk.on("error", (e) => errors.push(e.code));
        const options = {endpoint: gateway, key, subject, events: {page_view: ["analytics"]}};
        const first = await sdk.init(options);
        if (!first.known) return {first, errors};
        const granted = await sdk.set({analytics: "granted"}, {notice: {id: "web", version: "1"}});
        sdk.track("page_view", {path: "/account"});
        await sdk.flush();
        return {first, granted, errors, kept: localStorage.length};
    }"""
    found = page.evaluate(run, [shop.gateway, shop.key, vouched])
    # GPC from a known customer is their opt-out: recorded at init, before any choice.
    assert found["first"]["known"] is True
    assert found["first"]["gpc_honored"] is True
    assert found["granted"]["granted"] == ["analytics"]
    assert found["errors"] == []
    assert found["kept"] == 0  # the site names the customer: nothing stored by the SDK
    ledger = shop.consent(found["first"]["subject_id"])
    assert ledger["advertising"]["source"] == "gpc"
    _until(lambda: shop.stored() == ["page_view"], "the customer's event")

    # A proof the site did not make is refused, and nothing is recorded.
    forged = {**vouched, "identity_proof": "0" * 64}
    refused = page.evaluate(run, [shop.gateway, shop.key, forged])
    assert refused["errors"] == ["invalid_identity_proof"]
    assert refused["first"]["known"] is False


def test_a_withdrawal_made_while_the_first_grant_is_unanswered_wins(page: Page, shop: Shop) -> None:
    _open(page, shop)
    # The grant is in flight when "Withdraw everything" is pressed: a first-time visitor.
    granted = page.evaluate(
        """async () => {
            const notice = {id: "web", version: "1"};
            const granting = Consentry.set({analytics: "granted"}, {notice});
            document.getElementById("withdraw-all").click();
            return await granting;
        }"""
    )
    expect(page.locator("#status")).to_have_text("Everything is off.")
    assert granted["granted"] == []
    assert shop.paths() == ["POST /v1/consents", "POST /v1/consents/withdraw"]
    assert shop.consent(granted["subject_id"])["analytics"]["state"] == "withdrawn"
    assert _storage(page)["local"] == {"consentry": '{"refused":true}'}
    page.get_by_role("button", name="Add the scarf to the basket").click()
    page.evaluate("() => Consentry.flush()")
    page.wait_for_timeout(1500)
    assert "POST /v1/events" not in shop.paths()
    assert shop.stored() == []
    expect(page.get_by_role("switch", name="Analytics")).not_to_be_checked()


_VISIBILITY = """(state) => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_batch_sent_on_a_tab_switch_that_fails_is_sent_when_it_can_be(
    page: Page, shop: Shop
) -> None:
    _open(page, shop)
    _switch(page, "Analytics")
    page.evaluate("() => Consentry.flush()")
    _until(lambda: shop.stored() == ["page_view"], "the page view")

    events = f"{shop.gateway}/v1/events"
    page.route(events, lambda route: route.abort())
    page.get_by_role("button", name="Add the scarf to the basket").click()
    page.evaluate(_VISIBILITY, "hidden")  # a tab switch: the page lives on
    page.wait_for_timeout(300)
    assert shop.paths().count("POST /v1/events") == 2
    page.unroute(events)
    page.evaluate(_VISIBILITY, "visible")
    for _ in range(50):  # the retry is on the SDK's timer (1 s backoff)
        if "basket_add" in shop.stored():
            break
        page.wait_for_timeout(200)
    assert sorted(shop.stored()) == ["basket_add", "page_view"]
