"""A throwaway SoftHSM2 token for the PKCS#11 key source: one token a test process, its
configuration in a temporary directory (SOFTHSM2_CONF), a fresh key label for each test."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "consentry-test"
PIN = "246810"  # a throwaway token's PIN, not a secret
_labels = itertools.count()


@dataclass(frozen=True)
class Token:
    module: str
    label: str
    pin: str

    def key_label(self) -> str:
        """A label no test has used in this token yet: a test's keys are its own."""
        return f"kek-{os.getpid()}-{next(_labels)}"


def available() -> bool:
    try:
        import pkcs11  # noqa: F401, PLC0415 - only whether it is installed
    except ImportError:
        return False
    return Path(MODULE).exists() and shutil.which("softhsm2-util") is not None


@pytest.fixture(scope="session")
def softhsm() -> Iterator[Token]:
    """An initialised SoftHSM2 token in a temporary directory, for the whole test process."""
    if not available():
        if os.environ.get("CONSENTRY_TEST_SKIP_PKCS11") == "1":
            pytest.skip("PKCS#11 tests skipped by CONSENTRY_TEST_SKIP_PKCS11=1")
        pytest.fail("SoftHSM2 or python-pkcs11 is missing: `make test` installs them")
    with tempfile.TemporaryDirectory(prefix="consentry-softhsm-") as home:
        tokens = Path(home) / "tokens"
        tokens.mkdir()
        conf = Path(home) / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        previous = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        try:
            subprocess.run(
                [
                    "softhsm2-util",
                    "--init-token",
                    "--free",
                    "--label",
                    TOKEN,
                    "--pin",
                    PIN,
                    "--so-pin",
                    PIN,
                ],
                check=True,
                capture_output=True,
            )
            yield Token(MODULE, TOKEN, PIN)
        finally:
            if previous is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = previous
