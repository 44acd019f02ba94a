"""web/browser_sdk.py: the browser SDK as a classic script and an ES module, its headers and
size, and its unit tests (node's test runner, sdk/js/test/)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.settings import Settings
from consentry.web import browser_sdk
from tests.conftest import ADMIN_KEY, MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]
SDK_JS = ROOT / "sdk" / "js"
LIMIT = 10 * 1024  # API.md: under 10 KB gzipped


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    # The SDK is a file of the package: serving it needs no store (the app is not started).
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sdk") / "data", admin_key=ADMIN_KEY, master_key=MASTER_KEY
    )
    return TestClient(create_app(settings))


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("the SDK's tests need Node.js 20 (`node` on PATH)", pytrace=False)
    return found


@pytest.mark.parametrize("url", [browser_sdk.SCRIPT_URL, browser_sdk.MODULE_URL])
def test_served_as_javascript_to_any_origin_with_short_caching(
    client: TestClient, url: str
) -> None:
    response = client.get(url, headers={"Origin": "https://shop.example.com"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    etag = response.headers["etag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


def test_the_script_is_the_source_and_the_module_wraps_it(client: TestClient) -> None:
    source = (SDK_JS / "consentry.js").read_text(encoding="utf-8")
    script = client.get(browser_sdk.SCRIPT_URL).text
    module = client.get(browser_sdk.MODULE_URL).text
    assert script == source
    assert source in module
    assert "export default" not in script
    assert (
        client.get(browser_sdk.SCRIPT_URL).headers["etag"]
        != client.get(browser_sdk.MODULE_URL).headers["etag"]
    )


def test_one_home_for_the_source() -> None:
    """sdk/js/consentry.js is the packaged file itself (a link), so the two never differ."""
    link = SDK_JS / "consentry.js"
    assert link.is_symlink()
    assert link.resolve() == Path(str(browser_sdk.SOURCE)).resolve()


@pytest.mark.parametrize("url", [browser_sdk.SCRIPT_URL, browser_sdk.MODULE_URL])
def test_under_ten_kilobytes_gzipped(client: TestClient, url: str) -> None:
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    raw = response.content  # decoded by the client
    sent = gzip.compress(raw, compresslevel=9, mtime=0)
    assert len(sent) < LIMIT, f"{url} is {len(sent)} bytes gzipped (limit {LIMIT})"
    assert len(gzip.compress(raw, compresslevel=6)) < LIMIT  # a proxy's default level too


def test_the_module_exports_the_api(client: TestClient, tmp_path: Path) -> None:
    module = tmp_path / "consentry.mjs"
    module.write_bytes(client.get(browser_sdk.MODULE_URL).content)
    probe = tmp_path / "probe.mjs"
    probe.write_text(
        "import Consentry, * as named from './consentry.mjs';\n"
        "const names = Object.keys(named).filter((n) => n !== 'default').sort();\n"
        "console.log(JSON.stringify({names, same: named.init === Consentry.init,\n"
        "  global: typeof globalThis.Consentry}));\n"
    )
    out = subprocess.run(
        [node(), str(probe)], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(out.stdout)
    assert found == {
        "names": sorted(browser_sdk.EXPORTS),
        "same": True,
        "global": "undefined",  # a module leaves the global object alone
    }


def test_the_script_sets_window_consentry(client: TestClient, tmp_path: Path) -> None:
    script = tmp_path / "consentry.js"
    script.write_bytes(client.get(browser_sdk.SCRIPT_URL).content)
    # As a browser runs a classic script: no `module`, `this` the global object.
    probe = (
        "const vm = require('node:vm'); const fs = require('node:fs');\n"
        "const window = {setTimeout, clearTimeout}; window.globalThis = window;\n"
        "vm.runInNewContext(fs.readFileSync(process.argv[1], 'utf8'), window);\n"
        "console.log(Object.keys(window.Consentry).sort().join(','));\n"
    )
    out = subprocess.run(
        [node(), "-e", probe, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ",".join(sorted(browser_sdk.EXPORTS))


def test_the_sdk_unit_tests_pass() -> None:
    """sdk/js/test/ with node's test runner: queueing, filtering, batching, retries, storage."""
    out = subprocess.run(
        [node(), "--test", str(SDK_JS / "test")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout
