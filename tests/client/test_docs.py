"""docs/client.md's examples, run in order against a real gateway, so they stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY
from tests.servers import LiveServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def test_the_examples_run(gateway: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 6
    monkeypatch.setenv("CONSENTRY_ADMIN_KEY", ADMIN_KEY)
    script = "\n".join(blocks).replace("http://127.0.0.1:8000", gateway.url)
    namespace: dict[str, object] = {"__name__": "client_doc"}
    exec(compile(script, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    namespace["client"].close()  # type: ignore[attr-defined]
