"""scripts/audit_dependencies.py, the dependency audit of `make lint`: a known vulnerability
fails; PyPI's advisory data out of reach skips the audit with a message; any other error of
pip-audit fails."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_dependencies.py"


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(*dependencies: dict[str, object]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_known_vulnerability_fails_and_is_named(audit: ModuleType) -> None:
    found = report(
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
        {
            "name": "requests",
            "version": "2.19.0",
            "vulns": [{"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": []}],
        },
    )
    status, message = audit.verdict(1, found, "")
    assert status == 1
    assert "requests 2.19.0: PYSEC-2018-28 (fixed in 2.20.0)" in message


def test_no_vulnerability_passes_and_names_what_was_not_audited(audit: ModuleType) -> None:
    found = report(
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
        {"name": "rich", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    )
    assert audit.verdict(0, found, "") == (
        0,
        "dependency audit: no known vulnerabilities in 1 packages; "
        "not audited (not found on PyPI): rich",
    )


def test_advisory_data_for_none_of_the_packages_is_a_skip_not_a_pass(audit: ModuleType) -> None:
    found = report({"name": "rich", "skip_reason": "Dependency not found on PyPI"})
    status, message = audit.verdict(0, found, "")
    assert status == 0
    assert message.startswith("dependency audit skipped: PyPI's advisory data answered for none")


def test_an_unreachable_pypi_is_a_skip(audit: ModuleType) -> None:
    stderr = (
        "Traceback (most recent call last):\n...\nrequests.exceptions.ConnectionError: "
        "HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded\n"
    )
    status, message = audit.verdict(1, "", stderr)
    assert status == 0
    assert message.startswith("dependency audit skipped: PyPI's advisory data is unreachable")


def test_any_other_error_of_pip_audit_fails(audit: ModuleType) -> None:
    status, message = audit.verdict(2, "", "pip-audit: error: unrecognized arguments: --nope\n")
    assert status == 2
    assert "unrecognized arguments" in message


def test_a_refused_connection_skips_the_real_audit(tmp_path: Path) -> None:
    """pip-audit itself, through a proxy on a closed loopback port and with an empty cache:
    skipped, status 0."""
    env = os.environ | {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "dependency audit skipped: PyPI's advisory data is unreachable" in done.stdout
