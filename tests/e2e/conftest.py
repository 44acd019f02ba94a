"""Browser tests: a real gateway on loopback, Debian's Chromium driven by Playwright, a guard
that fails a test whose page asked anything of another host, and axe-core.

Fixtures:
- `live_server` -> LiveServer: the gateway under uvicorn on 127.0.0.1 on a free port, on a fresh
  SQLite data directory per test; `.url`, `.settings`, `.runtime`. `live_settings` decides what
  it serves: override it in a module (`def live_settings(settings): return settings`) to run
  that module on both back-ends, or use `backend_live_server`.
- `backend_live_server` -> LiveServer: the same on each back-end (SQLite, then PostgreSQL).
- `browser` (session) -> playwright Browser: one Chromium for the whole run.
- `page` -> playwright Page, in a fresh context; requests to non-loopback hosts are aborted
  and recorded in `third_party`, and the test fails if there were any.
- `third_party` -> ThirdPartyGuard: what `page` was kept from fetching.
Helpers (tests/e2e/browser.py): `axe(page)`, `screenshot(page, name)`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from consentry.settings import Settings
from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ThirdPartyGuard,
    is_loopback,
    require_browser_parts,
)
from tests.servers import LiveServer, serving_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route, WebSocketRoute

HERE = Path(__file__).resolve().parent
GUARD = pytest.StashKey[ThirdPartyGuard]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test whose page tried to reach another host fails, even if its own asserts held."""
    result = yield
    guard = item.stash.get(GUARD, None)
    if guard is not None:
        guard.check()
    return result


@pytest.fixture
def live_settings(sqlite_settings: Settings) -> Settings:
    return sqlite_settings


@pytest.fixture
def live_server(live_settings: Settings) -> Iterator[LiveServer]:
    with serving_app(live_settings) as server:
        yield server


@pytest.fixture
def backend_live_server(settings: Settings) -> Iterator[LiveServer]:
    with serving_app(settings) as server:
        yield server


# One Chromium per test file: Playwright's sync API holds an asyncio loop running in this
# thread while it lives, and the next file in the same worker may run its own (asyncio.run).
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser_parts()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def third_party(request: pytest.FixtureRequest) -> ThirdPartyGuard:
    guard = ThirdPartyGuard()
    request.node.stash[GUARD] = guard
    return guard


@pytest.fixture
def page(browser: Browser, third_party: ThirdPartyGuard) -> Iterator[Page]:
    # Service workers would fetch past the routes: none.
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, service_workers="block", locale="en-GB"
    )

    def block(route: Route) -> None:
        if is_loopback(route.request.url):
            route.fallback()
        else:
            third_party.record(route.request.url)
            route.abort("blockedbyclient")

    def block_socket(socket: WebSocketRoute) -> None:
        third_party.record(socket.url)
        socket.close()

    context.route("**/*", block)
    context.route_web_socket(lambda url: not is_loopback(url), block_socket)
    try:
        yield context.new_page()
    finally:
        context.close()
