"""The audit action names: each is documented in docs/audit.md's table of actions."""

from __future__ import annotations

import re
from pathlib import Path

from consentry.audit.events import AuditAction

DOCS = Path(__file__).parent.parent.parent / "docs" / "audit.md"


def test_every_action_is_documented() -> None:
    rows = re.findall(r"^\| `([a-z_:]+)` \| [^|]+\|", DOCS.read_text(), flags=re.MULTILINE)
    for action in AuditAction:
        assert action.value in rows, f"{action.value} is missing from docs/audit.md"
    assert len(rows) == len(set(rows))
