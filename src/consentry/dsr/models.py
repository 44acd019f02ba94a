"""Data-subject request types: kinds, statuses, the transition table, verification levels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class RequestType(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    # CCPA §1798.121: limit the use of sensitive personal information.
    LIMIT = "limit"


class Status(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    AWAITING_DOWNSTREAM = "awaiting_downstream"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    OVERDUE = "overdue"


S = Status
FINAL = frozenset({S.COMPLETED, S.REJECTED, S.FAILED})
OPEN = frozenset(Status) - FINAL

# The dsr_state counter under which the withdrawal purge keeps its watermark (dsr/erasure.py;
# operations/figures.py reads how far it got).
PURGE_COUNTER = "withdrawal_purge"

# The state machine (API.md): each status and the statuses it may move to. A request past
# its deadline is `overdue` until it ends; work goes on underneath (see records.advance).
# A request whose notices went to systems that received the subject's data (Art. 19) waits
# in `awaiting_downstream` for each acknowledgement, whatever its type; the paths by type
# are drawn in docs/requests.md:
#   erasure        verified -> in_progress -> awaiting_downstream -> completed
#   restriction    verified -> awaiting_downstream -> completed (notices sent at verification)
#   rectification  verified -> awaiting_downstream -> completed (the runner's step)
#   objection      received -> awaiting_downstream -> completed (direct marketing, on receipt,
#                  even when nobody was told: the same answer for a customer and a stranger),
#                  verified -> in_progress -> awaiting_downstream -> completed (decided)
#   access, portability  verified -> completed (nothing is sent downstream)
#   limit          received -> completed, on receipt (no verification, nothing sent)
# and `completed` directly from the same statuses when no system received anything.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.RECEIVED: frozenset({S.VERIFIED, S.AWAITING_DOWNSTREAM, S.REJECTED, S.OVERDUE, S.COMPLETED}),
    S.VERIFIED: frozenset(
        {S.IN_PROGRESS, S.AWAITING_DOWNSTREAM, S.COMPLETED, S.REJECTED, S.FAILED, S.OVERDUE}
    ),
    S.IN_PROGRESS: frozenset({S.AWAITING_DOWNSTREAM, S.COMPLETED, S.REJECTED, S.FAILED, S.OVERDUE}),
    S.AWAITING_DOWNSTREAM: frozenset({S.COMPLETED, S.FAILED, S.OVERDUE}),
    S.OVERDUE: frozenset({S.COMPLETED, S.REJECTED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
}


class Level(StrEnum):
    """How sure the controller is of who asks (Art. 12(6); CCPA regs §7060-7062)."""

    NONE = "none"
    REASONABLE = "reasonable"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {"none": 0, "reasonable": 1, "high": 2}[self.value]


# The level each type needs (API.md, Verification; Art. 12(6), regs §7060-7062). Access is
# the exception: see required_level.
REQUIRED_LEVEL: dict[RequestType, Level] = {
    RequestType.ACCESS: Level.REASONABLE,
    RequestType.RESTRICTION: Level.REASONABLE,
    RequestType.OBJECTION: Level.REASONABLE,
    RequestType.ERASURE: Level.HIGH,
    RequestType.RECTIFICATION: Level.HIGH,
    RequestType.PORTABILITY: Level.HIGH,
    # Regs §7027(e): a request to limit, like an opt-out, need not be verifiable.
    RequestType.LIMIT: Level.NONE,
}


class Scope(StrEnum):
    """What an access request asks for: the data itself, or only its categories (sources,
    purposes, recipients), which discloses no value of it."""

    DATA = "data"
    CATEGORIES = "categories"


def required_level(
    type_: RequestType, jurisdictions: Iterable[str], scope: Scope | None = None
) -> Level:
    """The level a request must reach before anything is disclosed or destroyed. Access to the
    data itself is `high` when any of `jurisdictions` (the request's, the subject's on record)
    is US-CA (specific pieces, regs §7062(c)); categories only are `reasonable` (§7062(b))."""
    if type_ is RequestType.ACCESS and scope is not Scope.CATEGORIES and "US-CA" in jurisdictions:
        return Level.HIGH
    return REQUIRED_LEVEL[type_]


# What a verification may say it matched: an identity type, or evidence that is none of the
# subject's identity values. A rectification must name it (regs §7060(h)).
MatchedEvidence = Literal["account_login", "document", "shared_secret", "transaction"]


@dataclass(frozen=True, slots=True)
class Verification:
    """How the requester was verified: the method, the level it reaches, and what it matched
    (identity types or MatchedEvidence), when the verifier says."""

    method: str
    level: Level
    matched: tuple[str, ...] | None = None


# Types whose result is a file (JSON, or CSV on request).
DOWNLOADABLE = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


class Step(StrEnum):
    """The runner's progress through a request, kept in the database so a restart resumes."""

    NEW = "new"
    SHREDDED = "shredded"  # erasure: marked erased, retained items re-sealed, key destroyed
    PURGED = "purged"  # erasure: rows deleted, deliveries cancelled, purge requests sent
    NOTIFIED = "notified"  # notices sent; waiting for acknowledgements
    AWAITING_DECISION = "awaiting_decision"  # objection: an operator decides per purpose
    DONE = "done"


class NoticeKind(StrEnum):
    """Rights notices to downstream systems (API.md, Data map and delivery; Art. 19)."""

    PURGE_REQUEST = "purge_request"
    RESTRICTION = "restriction"
    RESTRICTION_LIFTED = "restriction_lifted"
    RECTIFICATION = "rectification"
    OBJECTION = "objection"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    # Consent propagation: a ledger change, to a system with `consent_events`.
    CONSENT_UPDATED = "consent_updated"


@dataclass(frozen=True, slots=True)
class Request:
    request_id: str
    type: RequestType
    status: Status
    subject_id: str | None
    jurisdiction: str
    format: str | None
    purposes: list[str] | None
    ground: str | None
    verification_method: str | None
    verification_level: Level | None
    scope: Scope | None
    required: Level
    received_at: datetime
    due_at: datetime
    acknowledge_by: datetime | None
    extended_at: datetime | None
    verified_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    step: Step
    reason: str | None
    result: dict[str, Any] | None
    # Whether an authorised agent made it (its name and proof are sealed apart: records.Notes).
    has_agent: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN
