"""Audit: the tamper-evident record of every privacy-relevant act.

`verify_inclusion`, `verify_consistency` and `verify_head` check, without the server, what
GET /v1/audit/head and the proof endpoints return.
"""

from consentry.audit.auditor import verify_consistency, verify_head, verify_inclusion

__all__ = ["verify_consistency", "verify_head", "verify_inclusion"]
