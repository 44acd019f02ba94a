"""The audit action names: documented in docs/audit.md, one shape, and never renamed (they are
stored in the signed log)."""

from __future__ import annotations

import re
from pathlib import Path

from consentry.audit.events import AuditAction

DOCS = Path(__file__).parent.parent.parent / "docs" / "audit.md"

# The first part of every name (docs/audit.md, Actions). A new domain is a deliberate change:
# add it here and say what it names there.
DOMAINS = frozenset(
    {
        "apikey",
        "assessment",
        "audit",
        "consent",
        "data",
        "delivery",
        "events",
        "fideslang",
        "incident",
        "inference",
        "keys",
        "notice",
        "person",
        "portal",
        "purpose",
        "request",
        "rights_notice",
        "schema",
        "subject",
        "system",
        "vendor",
    }
)

# Lower-case snake words joined by ':', two parts (domain:action) or three
# (domain:object:action).
WORD = r"[a-z]+(?:_[a-z]+)*"
SHAPE = re.compile(rf"{WORD}(?::{WORD}){{1,2}}")

# Every name this version writes. A name once stored stays readable in logs already signed,
# so it is never renamed or dropped; new names are added below.
STORED = frozenset(
    {
        "apikey:created",
        "apikey:revoked",
        "subject:created",
        "subject:identity:added",
        "subject:jurisdiction:set",
        "subject:key:destroyed",
        "keys:signing:created",
        "audit:entries:read",
        "audit:head:read",
        "audit:proof:read",
        "audit:log:verified",
        "purpose:created",
        "purpose:updated",
        "notice:published",
        "schema:updated",
        "events:batch:ingested",
        "data:detokenized",
        "data:query",
        "data:read",
        "data:export",
        "data:export:downloaded",
        "consent:granted",
        "consent:denied",
        "consent:withdrawn",
        "consent:tcf_vendors:set",
        "system:created",
        "system:updated",
        "system:deleted",
        "delivery:refused",
        "delivery:cancelled",
        "delivery:dead_lettered",
        "delivery:resent",
        "rights_notice:queued",
        "rights_notice:acknowledged",
        "rights_notice:overdue",
        "request:received",
        "request:duplicate",
        "request:required_level:raised",
        "request:verification:recorded",
        "request:verified",
        "request:extended",
        "request:step",
        "request:awaiting_downstream",
        "request:downstream:acknowledged",
        "request:completed",
        "request:rejected",
        "request:failed",
        "request:overdue",
        "request:objection:decided",
        "request:result:read",
        "portal:link:created",
        "portal:code:requested",
        "portal:code:accepted",
        "portal:code:refused",
        "portal:code:blocked",
        "subject:erased",
        "subject:data:deleted",
        "subject:restricted",
        "subject:restriction:lifted",
        "subject:objected",
        "subject:sensitive:limited",
        "subject:identity:rectified",
        "subject:tombstone:cleared",
        "data:retained",
        "events:withdrawal:purged",
        "events:retention:swept",
        "consent:expired",
        "events:expiry:purged",
        "incident:created",
        "incident:notified",
        "incident:closed",
        "inference:recorded",
        "inference:read",
        "inference:contested",
        "inference:reviewed",
        "inference:retention:swept",
        "person:created",
        "person:password:set",
        "person:totp:confirmed",
        "person:signed_in",
        "person:sign_in:failed",
        "person:locked",
        "person:signed_out",
        "person:disabled",
        "vendor:created",
        "vendor:updated",
        "vendor:deleted",
        "fideslang:imported",
        "events:topic_purge:waiting",
        "events:topic_purge:passed",
    }
)


def test_every_action_is_documented() -> None:
    rows = re.findall(r"^\| `([a-z_:]+)` \| [^|]+\|", DOCS.read_text(), flags=re.MULTILINE)
    for action in AuditAction:
        assert action.value in rows, f"{action.value} is missing from docs/audit.md"
    assert len(rows) == len(set(rows))


def test_every_name_has_the_one_shape() -> None:
    for action in AuditAction:
        assert SHAPE.fullmatch(action.value), f"{action.value}: not domain[:object]:action"
        domain = action.value.split(":")[0]
        assert domain in DOMAINS, f"{action.value}: {domain!r} is not an audit domain"


def test_no_name_is_reused() -> None:
    # An Enum member given another's value becomes its alias: two acts, one stored name.
    names = [member.value for member in AuditAction.__members__.values()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_no_stored_name_is_renamed_or_dropped() -> None:
    missing = STORED - {action.value for action in AuditAction}
    assert not missing, f"stored audit names gone from AuditAction: {sorted(missing)}"


def test_the_shape_check_refuses_other_shapes() -> None:
    for name in (
        "subject",
        "Subject:created",
        "subject-key:destroyed",
        "subject:key:destroyed:now",
        "subject::created",
        "subject:created_",
    ):
        assert not SHAPE.fullmatch(name), name
