"""Audit entry types and their canonical form (no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

LEAF_PREFIX = b"\x00"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII kept (API.md, Audit)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    index: int
    at: str
    actor: str
    action: str
    subject_id: str | None
    details: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The entry as hashed: every field but `leaf_hash`."""
        return {
            "index": self.index,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject_id": self.subject_id,
            "details": self.details,
        }

    def leaf_hash(self) -> str:
        """SHA-256(0x00 || canonical JSON), lowercase hex: the RFC 9162 leaf hash."""
        data = LEAF_PREFIX + canonical_json(self.body()).encode()
        return hashlib.sha256(data).hexdigest()
