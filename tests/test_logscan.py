"""tests/logscan.py, the log scan: a run whose log output holds a fictional identity value fails
and names it, alone and under pytest-xdist; a run that logs none passes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consentry.subjects.models import Identity, IdentityType
from tests import logscan

ROOT = Path(__file__).resolve().parent.parent
LEAKY = """
import logging

from consentry.subjects.models import Identity, IdentityType

log = logging.getLogger("consentry.leaky")


def test_logs_an_address():
    log.warning("sent a receipt to %s", "ines.weber@example.com")


def test_logs_an_identifier_it_was_given():
    Identity(IdentityType.CUSTOMER_ID, "CRM-7f3a-99812-zz")
    log.debug("customer %s", "crm-7f3a-99812-ZZ")


def test_an_exception_message():
    try:
        raise ValueError("no subject for +44 7700 900461")
    except ValueError:
        log.exception("lookup failed")
"""
CLEAN = """
import logging


def test_logs_nothing_personal():
    logging.getLogger("consentry.clean").warning("3 events accepted")
"""


def run(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(source)
    # Only the plugins the run needs (the scan, and xdist when asked for): quicker to start.
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.logscan",
            "-p",
            "no:randomly",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            *args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("args", [(), ("-p", "xdist.plugin", "-n", "1")], ids=["alone", "xdist"])
def test_a_fictional_value_in_the_logs_fails_the_run(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = run(tmp_path, LEAKY, *args)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    assert "log scan: personal data in the logs" in done.stdout
    assert "consentry.leaky: ines.weber@example.com in 'sent a receipt to" in done.stdout
    assert "crm-7f3a-99812-zz in 'customer crm-7f3a-99812-ZZ'" in done.stdout
    assert "+44 7700 900461" in done.stdout


def test_a_run_without_one_passes(tmp_path: Path) -> None:
    done = run(tmp_path, CLEAN)
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "log scan: 1 distinct log texts, 0 identity values" in done.stdout
    assert "no hit" in done.stdout


def test_the_tests_own_machinery_and_short_identifiers_are_not_searched() -> None:
    scan = logscan.LogScan()
    scan.keep(logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", ("a@example.com",), None))
    scan.keep(logging.LogRecord("consentry.x", logging.INFO, "", 0, "row c1 kept", None, None))
    scan.note(IdentityType.CUSTOMER_ID, "c1")
    assert scan.scan() == []


def test_every_spelling_of_a_drama_number_and_the_reserved_domains_are_found() -> None:
    for text in (
        "+44 7700 900123", "+447700900123", "07700 900123", "07700900123", "0044 7700 900123",
        "ana@example.com", "ANA@Example.ORG", "x.y@mail.example", "b@shop.test", "c@d.invalid",
        "Ana Garcia", "ana.garcia",
    ):  # fmt: skip
        assert logscan.SHAPES.search(f"to {text} now"), text
    for text in ("17700900123", "+4477009001234", "sub_0123456789abcdef", "Ana Garciaz"):
        assert logscan.SHAPES.search(text) is None, text


def test_an_identity_made_in_this_process_is_noted() -> None:
    before = set(logscan._SCAN.values)
    Identity(IdentityType.EMAIL, "noted.once@example.com")
    assert "noted.once@example.com" in logscan._SCAN.values - before
