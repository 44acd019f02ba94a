"""What the browser tests share: Debian's Chromium, the guard against third-party requests,
axe-core's accessibility check and the screenshots the README embeds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Below the request guard: a name other than loopback does not even resolve, so nothing
    # the guard cannot see (a DNS prefetch, a service worker) reaches another host either.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Loopback only: the pages under test and the servers the tests start.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Schemes that never leave the browser.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome-extension"})
# WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def require_browser_parts() -> None:
    """Fail, not skip, when what the browser tests need is missing: `make test` installs it."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium ({CHROMIUM}, Debian's chromium package)")
    if not AXE_JS.exists():
        missing.append(f"axe-core ({AXE_JS.relative_to(ROOT)}, from package-lock.json)")
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        missing.append("the playwright Python package (the dev extra)")
    if missing:
        pytest.fail(
            "the browser tests need "
            + ", ".join(missing)
            + ": run `make test`, which installs them (never `playwright install`)",
            pytrace=False,
        )


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOOPBACK


@dataclass
class ThirdPartyGuard:
    """The requests a page tried to make to a host other than loopback; each was aborted."""

    blocked: list[str] = field(default_factory=list)

    def record(self, url: str) -> None:
        self.blocked.append(url)

    def check(self) -> None:
        """Fail if any request left for another host: the pages work without third parties."""
        if self.blocked:
            listed = "\n  ".join(self.blocked)
            raise AssertionError(f"the page made requests to third parties:\n  {listed}")

    def clear(self) -> None:
        self.blocked.clear()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1/2.2 A and AA violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol rather than added as a script tag: the
        # pages' Content-Security-Policy (no inline script) rightly refuses the tag.
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    results: dict[str, Any] = page.evaluate(
        """async (tags) => await axe.run(document, {
            runOnly: {type: "tag", values: tags},
            resultTypes: ["violations"],
        })""",
        WCAG_TAGS,
    )
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def axe(page: Page, violations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Fail listing every serious or critical violation on the page (axe_violations(page),
    unless they were taken already); return the milder ones."""
    if violations is None:
        violations = axe_violations(page)
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = []
        for v in blocking:
            targets = ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
            more = f" (+{len(v['nodes']) - 5} more)" if len(v["nodes"]) > 5 else ""
            lines.append(f"{v['impact']} {v['id']}: {v['help']} at {targets}{more}")
        pytest.fail(
            f"axe-core found {len(blocking)} serious or critical violations on {page.url}:\n  "
            + "\n  ".join(lines),
            pytrace=False,
        )
    return [v for v in violations if v.get("impact") not in BLOCKING_IMPACTS]


def screenshot(page: Any, name: str) -> Path:
    """Write the page as docs/screenshots/<name>.png (the README embeds them)."""
    assert _NAME.fullmatch(name), f"a screenshot name is lower-case words and dashes: {name!r}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path
