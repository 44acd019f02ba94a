"""The key tests run with each key source: CONSENTRY_MASTER_KEY and a PKCS#11 token."""

from __future__ import annotations

import pytest


@pytest.fixture(params=("env", "pkcs11"))
def key_source(request: pytest.FixtureRequest) -> str:
    return str(request.param)
