"""The shapes the API answers with (API.md), as TypedDicts: what a caller reads is typed, and
the values are the server's own JSON, unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

# A JSON object the client passes through as the server sent it (incidents, the compliance
# summary, request results, ledger entries: rich shapes documented in API.md and docs/).
JSONObject = dict[str, Any]
# One event as `POST /v1/events` takes it: event_id, event_type, occurred_at (RFC 3339, or an
# aware datetime), subject, consent_token?, properties, gpc?.
Event = Mapping[str, Any]


class Identity(TypedDict):
    type: str
    value: str


class SubjectRef(TypedDict, total=False):
    """`{"subject_id": ...}` or `{"identities": [{"type": "email", "value": ...}]}`."""

    subject_id: str
    identities: list[Identity]


# Where a method takes a subject: a reference, or a subject id alone.
SubjectLike = SubjectRef | str


class NoticeRef(TypedDict):
    id: str
    version: str


class Verification(TypedDict, total=False):
    method: str
    level: Literal["reasonable", "high"]
    matched: list[str]


class Page(TypedDict, Generic[T]):
    items: list[T]
    next: str | None


class PurposeState(TypedDict):
    state: str
    updated_at: str
    expires_at: str | None
    source: str
    notice_sha256: str | None


class ConsentResult(TypedDict):
    """The answer to a consent write or withdrawal, with a fresh consent token."""

    subject_id: str
    version: int
    purposes: dict[str, PurposeState]
    gpc_honored: bool
    token: str
    token_expires_at: str


class ConsentState(TypedDict):
    subject_id: str
    version: int
    jurisdiction: str
    age_band: str
    gpc: bool
    sensitive_limited: bool
    purposes: dict[str, PurposeState]


class CheckResult(TypedDict):
    allowed: bool
    legal_basis: str
    reason: str
    version: int


class ConsentToken(TypedDict):
    subject_id: str
    version: int
    token: str
    token_expires_at: str


class Compliance(TypedDict):
    subject_id: str
    status: str
    purposes: dict[str, str]
    version: int
    may_ask_again_at: NotRequired[str]


class EventResult(TypedDict):
    """One event's outcome. `already_stored` (set by a batcher only): a retry of a batch
    whose earlier attempt may have reached the server found this event_id stored, so the
    event counts as delivered; its purposes were in the answer that was lost."""

    event_id: str | None
    status: Literal["accepted", "rejected"]
    purposes: list[str]
    code: NotRequired[str]
    detail: NotRequired[str]
    already_stored: NotRequired[bool]


class EventsResult(TypedDict):
    accepted: int
    rejected: int
    results: list[EventResult]


class Purpose(TypedDict):
    key: str
    name: str
    legal_basis: str
    retention_days: int
    consent_ttl_days: int
    sale_or_share: bool
    direct_marketing: bool
    strictly_necessary: bool
    special_category_condition: str | None
    us_ca_model: str
    retain_identities: bool
    data_use: str | None
    automated_decision_basis: str | None
    description: str
    legal_basis_locked: bool


class Notice(TypedDict):
    notice_id: str
    version: str
    sha256: str
    purposes: list[str]


class Schema(TypedDict):
    event_type: str
    version: int
    purposes: list[str]
    fields: dict[str, JSONObject]


class Subject(TypedDict):
    subject_id: str
    jurisdiction: str
    jurisdiction_known: bool
    created_at: str
    identity_types: list[str]
    created: NotRequired[bool]


class RequestVerification(TypedDict):
    level: str | None
    required: str
    verified_at: str | None


class DataSubjectRequest(TypedDict):
    """A data-subject request as `GET /v1/requests/{id}` shows it; what tells whether the
    person is known (`subject_found`, `subject_id`, `step`, `downstream`, `notices`) only once
    the requester is verified."""

    request_id: str
    type: str
    status: str
    jurisdiction: str
    received_at: str
    due_at: str
    extended: bool
    verification: RequestVerification
    completed_at: str | None
    scope: NotRequired[str]
    agent: NotRequired[JSONObject]
    acknowledge_by: NotRequired[str]
    purposes: NotRequired[list[str]]
    ground: NotRequired[str]
    format: NotRequired[str]
    reason: NotRequired[str]
    subject_found: NotRequired[bool]
    subject_id: NotRequired[str | None]
    step: NotRequired[str]
    downstream: NotRequired[list[JSONObject]]
    notices: NotRequired[list[JSONObject]]
    duplicate: NotRequired[bool]


class RestrictionLifted(TypedDict):
    subject_id: str
    restricted: bool
    request_id: str | None
    notified: list[str]


class PortalLink(TypedDict):
    url: str
    expires_at: str
    level: str | None


class QueryAnswer(TypedDict):
    """`POST /v1/query`: rows of `{<group_by fields>, "value"}`; `dp_epsilon` on a noisy
    answer, `suppressed` (`{"groups", "value"?}`) when small groups were left out."""

    rows: list[JSONObject]
    policy_version: int
    dp_epsilon: NotRequired[float]
    suppressed: NotRequired[JSONObject]


class Export(TypedDict):
    export_id: str
    status: str
    purpose: str
    format: str
    filters: JSONObject
    policy_version: int
    rows_at_creation: int
    created_at: str
    completed_at: str | None


class AuditEntry(TypedDict):
    index: int
    at: str
    actor: str
    action: str
    subject_id: str | None
    details: JSONObject
    leaf_hash: str


class AuditHead(TypedDict):
    size: int
    root_hash: str
    signed_at: str
    signature: str
    kid: str


class InclusionProof(TypedDict):
    leaf_index: int
    tree_size: int
    audit_path: list[str]


class ConsistencyProof(TypedDict):
    first: int
    second: int
    consistency_path: list[str]


class ApiKey(TypedDict):
    key_id: str
    role: str
    label: str
    created_at: str
    revoked_at: str | None
    origins: NotRequired[list[str]]  # a browser key's web origins
    key: NotRequired[str]


class Me(TypedDict):
    key_id: str
    role: str
    permissions: list[str]
