"""Every table, in one SQLAlchemy Core MetaData; migrations must produce exactly this."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    false,
    func,
    literal_column,
    select,
    text,
)

from consentry import clock

BigInt = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


_UTC_TEXT_LENGTH = len("2026-01-01T00:00:00.000000Z")
# A subject under a restriction (Art. 18), whole or pending an objection: the condition of
# the partial index on subjects, which statements excluding those subjects spell so.
RESTRICTED = "restricted OR restricted_purposes IS NOT NULL"


def utc_text(value: datetime) -> str:
    """The stored spelling of a time: fixed-width UTC text, so text order is time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return clock.rfc3339(value)


class UTCTime(TypeDecorator[datetime]):
    """An aware UTC datetime stored as fixed-width RFC 3339 text, so text order is time order."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return utc_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # fromisoformat reads the stored spelling (with its `Z`) some 20 times faster than
        # strptime; anything else stored there is refused as before.
        if len(value) != _UTC_TEXT_LENGTH or value[-1] != "Z":
            raise ValueError(f"not a stored time: {value!r}")
        return datetime.fromisoformat(value)


subjects = Table(
    "subjects",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("created_at", UTCTime(), nullable=False),
    # Bumped by every consent ledger entry of the subject (the consistency rule, DESIGN.md).
    Column("consent_version", BigInt, nullable=False, server_default="0"),
    Column("age_band", String(12), nullable=True),
    # Set by a GPC signal: later sale/share grants need a confirmed opt-in.
    Column("gpc_opt_out", Boolean, nullable=False, server_default=false()),
    # Set by an erasure ("erased"), or "tombstone" for a person met again after one: checks
    # answer subject_erased and events are refused (dsr/erasure.py).
    Column("erasure", String(12), nullable=True),
    # Art. 18: the data is only stored while this holds.
    Column("restricted", Boolean, nullable=False, server_default=false()),
    # JSON lists of purposes: upheld or direct-marketing objections (Art. 21), and purposes
    # restricted while an objection awaits its decision.
    Column("objected", Text, nullable=True),
    Column("restricted_purposes", Text, nullable=True),
    # CCPA §1798.121: a request to limit the use of sensitive personal information holds.
    Column("sensitive_limited", Boolean, nullable=False, server_default=false()),
    # The GVL vendors with consent in the subject's latest TC string, in "1-5,8" run
    # notation ("" none); NULL while no TC string was recorded (consent/signals.py).
    Column("tcf_vendors", Text, nullable=True),
    # The few subjects under a restriction, which the retention sweep's statements exclude.
    Index(
        "ix_subjects_restricted",
        "subject_id",
        sqlite_where=text(RESTRICTED),
        postgresql_where=text(RESTRICTED),
    ),
)

identities = Table(
    "identities",
    metadata,
    Column("identity_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subject_id",
        String(40),
        ForeignKey("subjects.subject_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("type", String(16), nullable=False),
    # Keyed HMAC of type and normalised value: the only form in which an identity is searchable.
    Column("blind_index", LargeBinary(32), nullable=False),
    # The normalised value, AES-256-GCM under the subject's own data key.
    Column("value_ct", LargeBinary, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    UniqueConstraint("type", "blind_index"),
    Index(None, "subject_id"),
)

subject_keys = Table(
    "subject_keys",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
)

key_material = Table(
    "key_material",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
)

# Each key-encryption key this database has known: when it came into use (the master key's
# age) and when a rotation retired it, nothing being wrapped under it any more.
master_keys = Table(
    "master_keys",
    metadata,
    Column("kek_id", String(16), primary_key=True),
    Column("created_at", UTCTime(), nullable=False),
    Column("retired_at", UTCTime(), nullable=True),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("public_jwk", Text, nullable=False),
    Column("wrapped_private", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("retired_at", UTCTime(), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is the right one.
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("revoked_at", UTCTime(), nullable=True),
    # A browser key's web origins, as a JSON list; NULL for every other role.
    Column("origins", Text, nullable=True),
)

# Secrets a site vouches for a visitor's customer_id with (auth/identity.py): sealed under the
# KEK (the HMAC needs the secret itself), never in clear.
identity_secrets = Table(
    "identity_secrets",
    metadata,
    Column("secret_id", String(32), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("secret_ct", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("revoked_at", UTCTime(), nullable=True),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column(
        "idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UTCTime(), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject_id", String(40), nullable=True),
    Column("details", Text, nullable=False),
    Column("leaf_hash", String(64), nullable=False),
    Index(None, "subject_id", "idx"),
)

# One row: the size of the audit log and its Merkle frontier (the roots of its perfect
# subtrees, largest first, 32 bytes each). Taking its row lock orders appends across processes.
audit_state = Table(
    "audit_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInt, nullable=False),
    Column("frontier", LargeBinary, nullable=True),
)

# Interior nodes of the audit Merkle tree: the hash of each completed perfect subtree at
# `level` >= 1 (leaves are audit_entries.leaf_hash), so a proof reads O(log n) rows.
audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInt, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

# Every signed tree head ever made, in signing order; `signed_at` is kept as the exact text
# that was signed.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("size", BigInt, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("signed_at", String(27), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signature", String(100), nullable=False),
    Index(None, "size"),
)

# Each verification of the whole log (`consentry audit verify`, the dashboard's "verify now"):
# when, by whom, what it checked and what it found (the first problem only), so the dashboard
# shows the last one. No personal data: actors are key, person or command ids.
audit_verifications = Table(
    "audit_verifications",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("verified_at", UTCTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("entries", BigInt, nullable=False),
    Column("heads", BigInt, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("problem", String(500), nullable=True),
)

# Bumped by every change of configuration (purposes, notices, ...), so every process can tell
# that its in-memory copy is stale with one primary-key read.
config_state = Table(
    "config_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInt, nullable=False),
    # Counted by a trigger on every change of a subject's consent_version (ledger entries,
    # erasure, restriction): with `version`, it makes the policy version of reads.
    Column("consent_changes", BigInt, nullable=False, server_default="0"),
)

purposes = Table(
    "purposes",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("legal_basis", String(24), nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("consent_ttl_days", Integer, nullable=False),
    Column("sale_or_share", Boolean, nullable=False),
    Column("direct_marketing", Boolean, nullable=False),
    Column("strictly_necessary", Boolean, nullable=False),
    Column("special_category_condition", String(1), nullable=True),
    Column("us_ca_model", String(8), nullable=False),
    Column("retain_identities", Boolean, nullable=False),
    Column("data_use", String(100), nullable=True),
    Column("description", Text, nullable=False),
    # Art. 22(2): contract, law or explicit_consent; null, no significant automated decision.
    Column("automated_decision_basis", String(16), nullable=True),
    Column("legal_basis_locked", Boolean, nullable=False),
    Column("updated_at", UTCTime(), nullable=False),
    # The purpose's bit in events.purpose_bits (0-62), fixed when the purpose is created.
    Column("bit", Integer, nullable=False, unique=True),
)

notices = Table(
    "notices",
    metadata,
    Column("notice_id", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
)

consent_ledger = Table(
    "consent_ledger",
    metadata,
    Column("entry_id", BigInt, primary_key=True, autoincrement=True),
    Column("subject_id", String(40), nullable=False),
    Column("version", BigInt, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("state", String(12), nullable=False),
    Column("source", String(12), nullable=False),
    Column("at", UTCTime(), nullable=False),
    Column("expires_at", UTCTime(), nullable=True),
    Column("notice_id", String(64), nullable=True),
    Column("notice_version", String(64), nullable=True),
    Column("notice_sha256", String(64), nullable=True),
    Column("jurisdiction", String(8), nullable=True),
    Column("explicit", Boolean, nullable=False),
    Column("actor", String(80), nullable=False),
    # Evidence may name the person (who authorised, from where): sealed under their key.
    Column("evidence_ct", LargeBinary, nullable=True),
    # One entry per version: versions of a subject are distinct and strictly increasing.
    UniqueConstraint("subject_id", "version"),
    # The fold reads only the latest entry per purpose.
    Index(None, "subject_id", "purpose", "version"),
    # The expiry sweep reads grants by the time they lapse (consent/expiry.py).
    Index(None, "expires_at"),
)

event_schemas = Table(
    "event_schemas",
    metadata,
    Column("event_type", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("updated_at", UTCTime(), nullable=False),
)

# Tokenised values: reversible only through this table, sealed under the subject's key, so an
# erasure (key destroyed, rows deleted) makes every token of the subject meaningless.
token_vault = Table(
    "token_vault",
    metadata,
    Column("token", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=False),
    Column("field", String(64), nullable=False),
    # Keyed hash of (subject, field, value): the same value gets the same token.
    Column("value_index", LargeBinary(32), nullable=False, unique=True),
    Column("value_ct", LargeBinary, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Index(None, "subject_id"),
)

# Accepted events. `seq` grows, so inserts append; personal values are in `sealed` only.
events = Table(
    "events",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", UTCTime(), nullable=False),
    Column("received_at", UTCTime(), nullable=False),
    Column("subject_id", String(40), nullable=False),
    # JSON list of the purposes the event is stored for.
    Column("purposes", Text, nullable=False),
    # JSON of kept values that are not about a person, and of pseudonyms and tokens.
    Column("properties", Text, nullable=False),
    # Kept personal values (fideslang user.*), JSON sealed under the subject's key.
    Column("sealed", LargeBinary, nullable=True),
    # JSON {field: [purposes]} for fields shown only to some purposes (own purposes, Art. 9).
    Column("field_purposes", Text, nullable=True),
    # The stored-for purposes as bits (purposes.bit), and a 60-bit integer of the subject id:
    # reads filter and count on these through one covering index, without touching rows.
    Column("purpose_bits", BigInt, nullable=False, server_default="0"),
    Column("subject_key", BigInt, nullable=False, server_default="0"),
    Index("ix_events_reads", "event_type", "occurred_at", "purpose_bits", "subject_key"),
)

# A subject's events are found by (`seq >> SEQ_GROUP_BITS`, subject_id): the index groups its
# entries by age, so that deleting a run of old events (the retention sweep) dirties a few
# pages of each group instead of one page per event, as an index on subject_id alone does.
# A read by subject names the groups it looks in (`of_subject`): one seek per group.
SEQ_GROUP_BITS = 14


def _group(seq: Any) -> Any:
    # A literal, not a parameter: the store matches a statement's expression to the index's
    # by its text.
    return seq.op(">>")(literal_column(str(SEQ_GROUP_BITS)))


Index("ix_events_subject_groups", _group(events.c.seq), events.c.subject_id)


def of_subject(subject_id: Any, *, after_seq: Any = None) -> Any:
    """The condition "the event is the subject's (and after `after_seq`)" spelled so that the
    store reads it through ix_events_subject_groups: the groups from the first event's (after
    `after_seq`) to the last's, each searched for the subject."""
    first = select(func.min(events.c.seq))
    if after_seq is not None:
        first = first.where(events.c.seq > after_seq)
    last = select(func.max(events.c.seq)).scalar_subquery()
    # Nested in the condition: a statement that starts with WITH is not counted as a change
    # by sqlite3 (its rowcount is -1), so a DELETE must start with DELETE.
    groups = select(_group(first.scalar_subquery()).label("n")).cte(
        "seq_groups", recursive=True, nesting=True
    )
    groups = groups.union_all(select(groups.c.n + 1).where(groups.c.n < _group(last)))
    held = [events.c.subject_id == subject_id, _group(events.c.seq).in_(select(groups.c.n))]
    if after_seq is not None:
        held.append(events.c.seq > after_seq)
    return and_(*held)


# Model inferences (governance/inferences.py): what a model made of a subject's data, for one
# purpose. The output and the data slice, which may be personal, are in `sealed` under the
# subject's key (as an event's values), the contest's and review's texts in `review_sealed`.
inferences = Table(
    "inferences",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("inference_id", String(40), nullable=False, unique=True),
    Column("subject_id", String(40), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("automated_decision", Boolean, nullable=False),
    Column("significant_effect", Boolean, nullable=False),
    # Whether an input was special-category data (Art. 9/10), as decided when recorded.
    Column("special_inputs", Boolean, nullable=False),
    # JSON list of the input events' ids.
    Column("input_events", Text, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    # recorded, contested (a human review is open: Art. 22(3)), reviewed.
    Column("status", String(16), nullable=False),
    Column("contested_at", UTCTime(), nullable=True),
    Column("reviewed_at", UTCTime(), nullable=True),
    Column("reviewer", String(200), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("review_sealed", LargeBinary, nullable=True),
    Index(None, "subject_id", "seq"),
)

# Exports: the job, its filters and the policy version it was created under; the content is
# read (and consent checked again) when it is downloaded.
exports = Table(
    "exports",
    metadata,
    Column("export_id", String(40), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("format", String(8), nullable=False),
    Column("filters", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("policy_version", BigInt, nullable=False),
    Column("rows", BigInt, nullable=True),
    Column("created_at", UTCTime(), nullable=False),
    Column("completed_at", UTCTime(), nullable=True),
    Column("error", Text, nullable=True),
)

# Differential privacy: epsilon spent per API key and UTC day.
dp_spend = Table(
    "dp_spend",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("spent", Float, nullable=False),
)

# The data map: downstream systems. The signing secret is sealed under the KEK, never in clear.
systems = Table(
    "systems",
    metadata,
    Column("system_id", String(64), primary_key=True),
    # JSON of the system's fields (API.md, Data map and delivery).
    Column("definition", Text, nullable=False),
    Column("secret_ct", LargeBinary, nullable=False),
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("updated_at", UTCTime(), nullable=False),
)

# The vendor register (Art. 28): processors the data map's systems name, with their DPA dates
# and sub-processors.
vendors = Table(
    "vendors",
    metadata,
    Column("vendor_id", String(64), primary_key=True),
    # JSON of the vendor's fields (API.md, Governance: Vendors).
    Column("definition", Text, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("updated_at", UTCTime(), nullable=False),
)

# Deliveries not yet made: written in the transaction that stores the events, deleted once
# delivered. `payload` (the event as the system may see it) is sealed under the subject's key,
# so an erasure makes a pending delivery unreadable too.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("system_id", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("subject_id", String(40), nullable=False),
    # JSON list of the purposes the delivery names (shrinks when one is withdrawn).
    Column("purposes", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # pending, sending (claimed by a worker), dead (attempts exhausted).
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCTime(), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("claimed_at", UTCTime(), nullable=True),
    Column("last_error", String(200), nullable=True),
    Index(None, "status", "system_id", "next_at"),
    Index(None, "subject_id"),
)

# Who received whose data for which purpose: the addressees of rights notices (Art. 19).
recipients = Table(
    "recipients",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("system_id", String(64), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("first_at", UTCTime(), nullable=False),
    # When the latest delivery of its data reached it (the receiver acknowledged it), to a
    # minute (delivery/worker.py LAST_EVERY); null until one has (lineage).
    Column("last_at", UTCTime(), nullable=True),
)

# The stream mode's record of which subject's records went to which consented topic, when the
# latest did, and by when the last of them is gone from it under the retention the replica
# applied to the topic (stream/replica.py, once per subject and topic a batch; both never
# backwards): an erasure or a withdrawal purge waits until `gone_by`.
stream_marks = Table(
    "stream_marks",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("last_at", UTCTime(), nullable=False),
    Column("gone_by", UTCTime(), nullable=False),
    # A topic's records still there (a system joining its consumers: delivery/joiners.py).
    Index(None, "topic", "gone_by"),
)

# What an erasure request (request_id) or a withdrawal purge (entry_id: the ledger entry)
# waits for on a consented topic: the subject's records there are past the topic's retention
# at `until`; `passed_at` once the runner saw it pass.
topic_waits = Table(
    "topic_waits",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=True),
    Column("entry_id", BigInt, nullable=True),
    Column("subject_id", String(40), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("until", UTCTime(), nullable=False),
    Column("passed_at", UTCTime(), nullable=True),
    Index(None, "request_id"),
    Index(None, "passed_at", "until"),
)

# Events not delivered, counted per system and reason (transfer_blocked, dpa_missing, ...).
delivery_refusals = Table(
    "delivery_refusals",
    metadata,
    Column("system_id", String(64), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInt, nullable=False),
)

# Rights notices (purge_request, consent_withdrawn, restriction, ...) to a system's rights
# endpoint, retried until a 2xx acknowledges them; the one record of whether a request's
# recipients have acknowledged it.
rights_notices = Table(
    "rights_notices",
    metadata,
    # Strictly growing: the order notices are sent in, the same on both back-ends (created_at
    # ties, and goes back when a clock does).
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("notice_id", String(40), nullable=False, unique=True),
    Column("system_id", String(64), nullable=False),
    Column("subject_id", String(40), nullable=False),
    Column("type", String(24), nullable=False),
    Column("request_id", String(64), nullable=True),
    # JSON list, or null when the notice concerns every purpose.
    Column("purposes", Text, nullable=True),
    Column("forward", Boolean, nullable=False),
    # pending (to send), manual (no rights endpoint: acknowledged by hand), acknowledged.
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCTime(), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("due_at", UTCTime(), nullable=False),
    Column("acknowledged_at", UTCTime(), nullable=True),
    Column("overdue_at", UTCTime(), nullable=True),
    Column("last_error", String(200), nullable=True),
    # What the notice carries that is personal (a rectification's corrected values), sealed
    # under the subject's data key: an erasure makes it unreadable with the rest.
    Column("sealed", LargeBinary, nullable=True),
    # A `consent_updated` notice's subject ledger version (its body's `version`); null for the
    # other types.
    Column("version", BigInt, nullable=True),
    Index(None, "status", "next_at"),
    Index(None, "request_id"),
    Index(None, "subject_id", "system_id", "seq"),
)

# Data-subject requests (dsr/requests.py). Free text and new identity values are in `notes_ct`,
# sealed under a named secret, never in clear.
requests = Table(
    "requests",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("subject_id", String(40), nullable=True),
    Column("jurisdiction", String(8), nullable=False),
    Column("format", String(8), nullable=True),
    Column("purposes", Text, nullable=True),
    Column("ground", String(8), nullable=True),
    Column("verification_method", String(64), nullable=True),
    Column("verification_level", String(12), nullable=True),
    # An access request's scope (data or categories) and the level fixed at receipt from its
    # type, jurisdiction and scope (dsr/models.py required_level); NULL: made before them.
    Column("scope", String(12), nullable=True),
    Column("required_level", String(12), nullable=True),
    # An authorised agent's name and proof (regs §7063), sealed like the notes; kept after an
    # erasure clears the notes, as the record of who asked.
    Column("agent_ct", LargeBinary, nullable=True),
    Column("received_at", UTCTime(), nullable=False),
    Column("due_at", UTCTime(), nullable=False),
    Column("acknowledge_by", UTCTime(), nullable=True),
    Column("extended_at", UTCTime(), nullable=True),
    Column("verified_at", UTCTime(), nullable=True),
    Column("completed_at", UTCTime(), nullable=True),
    Column("updated_at", UTCTime(), nullable=False),
    # The runner's last finished step: where a restarted process resumes.
    Column("step", String(24), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("result", Text, nullable=True),
    Column("notes_ct", LargeBinary, nullable=True),
    Index(None, "subject_id", "type"),
    Index(None, "status"),
)

# What an erasure keeps, sealed under the retention key, each item with its legal ground.
retained = Table(
    "retained",
    metadata,
    Column("retained_id", BigInt, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False),
    Column("subject_id", String(40), nullable=False),
    Column("item", String(32), nullable=False),
    Column("ground", String(32), nullable=False),
    Column("until", UTCTime(), nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Index(None, "request_id"),
)

# Keyed hashes of erased identities, linked to no subject: a person met again by one of them
# is refused (subject_erased) until they consent anew.
tombstones = Table(
    "tombstones",
    metadata,
    Column("tombstone", LargeBinary(32), primary_key=True),
    Column("created_at", UTCTime(), nullable=False),
)

# Counters of background work (the withdrawal purge's last ledger entry seen).
dsr_state = Table(
    "dsr_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInt, nullable=False),
)

# Retention sweeps (governance/retention.py): the running one (finished_at NULL) is where an
# interrupted sweep resumes; its counts advance with the cursor, in the transaction that does
# the work they count.
retention_sweeps = Table(
    "retention_sweeps",
    metadata,
    Column("sweep_id", BigInt, primary_key=True, autoincrement=True),
    Column("started_at", UTCTime(), nullable=False),
    # The moment the sweep judges retention at, kept when it resumes: counts stay exact.
    Column("as_of", UTCTime(), nullable=False),
    # Events up to this seq (the last stored when it started) are swept; `after_seq` is the
    # cursor.
    Column("until_seq", BigInt, nullable=False),
    Column("after_seq", BigInt, nullable=False),
    Column("examined", BigInt, nullable=False),
    Column("deleted", BigInt, nullable=False),
    Column("narrowed", BigInt, nullable=False),
    Column("skipped_restricted", BigInt, nullable=False),
    Column("finished_at", UTCTime(), nullable=True),
)

# Each subject's current state per purpose (its latest ledger entry), kept in the transaction
# of every ledger write, so counts by purpose and state never fold the ledger.
consent_current = Table(
    "consent_current",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("expires_at", UTCTime(), nullable=True),
    Column("version", BigInt, nullable=False),
    # Grants past their expiry are found by range, not by scanning every subject.
    Index(None, "state", "expires_at"),
)

# Each subject's compliance status as computed at consent `version` over purposes of
# `basis` (a digest of what statuses depend on), valid until `changes_at` (its earliest grant
# expiry): a row not valid now is computed again when read (consent/compliance.py).
subject_status = Table(
    "subject_status",
    metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("version", BigInt, nullable=False),
    Column("basis", String(16), nullable=False),
    Column("changes_at", UTCTime(), nullable=True),
    # Rows to compute again are found by range: past their time, or of another basis.
    Index(None, "changes_at"),
    Index(None, "basis"),
    Index(None, "status"),
)

# Running counts kept with consent_current and subject_status, in the same transactions, so
# the summary reads a few rows however many subjects there are: `scope` "coverage:<purpose>"
# counts current states (`name`), "status:<basis>" stored statuses. Each count is split over
# a few `shard`s by subject, so concurrent writers for different people seldom wait on one row.
tallies = Table(
    "tallies",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("name", String(16), primary_key=True),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInt, nullable=False),
)

# Events accepted and refused per day of receipt and refusal code ("" when accepted), added
# to once per batch in its transaction, on one of a few shards picked per batch (concurrent
# batches seldom wait on one row).
event_counts = Table(
    "event_counts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("outcome", String(8), primary_key=True),
    Column("code", String(48), primary_key=True),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInt, nullable=False),
)

# Values of fields declared non-personal (kept in clear) in which ingest found personal data
# and redacted it, per event type and field: a mis-declared schema shows on the dashboard and
# in /metrics. Counts and times only, never a value.
misclassified_values = Table(
    "misclassified_values",
    metadata,
    Column("event_type", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("n", BigInt, nullable=False),
    Column("first_seen_at", UTCTime(), nullable=False),
    Column("last_seen_at", UTCTime(), nullable=False),
)

# The breach register (governance/incidents.py). Staff's free text (description, facts, ...),
# which may name people, is in `sealed` under a named secret; `record` holds the rest as JSON.
incidents = Table(
    "incidents",
    metadata,
    # Strictly growing: the order of the register (lists, "created since").
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), nullable=False, unique=True),
    Column("status", String(8), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("detected_at", UTCTime(), nullable=False),
    Column("aware_at", UTCTime(), nullable=False),
    # Art. 33(1): null for risk none and for a processor (its controller notifies).
    Column("authority_due_at", UTCTime(), nullable=True),
    Column("closed_at", UTCTime(), nullable=True),
    Column("record", Text, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Index(None, "status", "authority_due_at"),
)

# Notifications of an incident, append-only: rows are inserted, never changed or removed.
incident_notifications = Table(
    "incident_notifications",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), nullable=False),
    Column("recipient", String(24), nullable=False),
    Column("at", UTCTime(), nullable=False),
    Column("recorded_at", UTCTime(), nullable=False),
    # Its deadline when it had one, and whether it came after it.
    Column("due_at", UTCTime(), nullable=True),
    Column("late", Boolean, nullable=False),
    # The reference and the delay reasons, sealed like the incident's free text.
    Column("sealed", LargeBinary, nullable=False),
    Index(None, "incident_id", "seq"),
)

# Leases of the background jobs (storage/leases.py): the process running a pass of each job now,
# across every process and machine on the database, until `expires_at` (seconds since the
# epoch, by the database's clock) unless renewed.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(96), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Alerts sent to the alert webhook: each alert's state, shared by every worker process, so
# that one of them sends each change once (operations/alerts.py).
alert_states = Table(
    "alert_states",
    metadata,
    Column("name", String(64), primary_key=True),
    # pending (the condition holds, not yet for long enough), firing, resolved
    Column("status", String(12), nullable=False),
    Column("since", UTCTime(), nullable=False),
    Column("starts_at", UTCTime(), nullable=True),
    Column("ends_at", UTCTime(), nullable=True),
    Column("value", Float, nullable=False),
    # Whether the webhook has the latest change of the alert.
    Column("sent", Boolean, nullable=False),
    # While a process sends it: until when; a sender that dies leaves it to be sent after.
    Column("claimed_until", UTCTime(), nullable=True),
    Column("updated_at", UTCTime(), nullable=False),
)

# Deliveries and reads stopped at the moment of use for want of consent: counted in the
# transaction that audits them (every worker sees the same total, restarts lose nothing).
processed_without_consent = Table(
    "processed_without_consent",
    metadata,
    # "delivery:<system_id>" or "read:<purpose>"
    Column("use", String(80), primary_key=True),
    Column("count", BigInt, nullable=False),
    Column("last_at", UTCTime(), nullable=False),
)

# Mail waiting to be sent (delivery/mail.py): the recipient, subject and text sealed under a
# named secret, and emptied (`sealed` null) once the mail is sent or given up.
outgoing_mail = Table(
    "outgoing_mail",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("mail_id", String(40), nullable=False, unique=True),
    # pending (to send, or being sent), sent, failed (given up)
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCTime(), nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    # Past it the mail is no use (its code has expired): given up rather than sent.
    Column("expires_at", UTCTime(), nullable=False),
    Column("finished_at", UTCTime(), nullable=True),
    Column("last_error", String(200), nullable=True),
    Column("sealed", LargeBinary, nullable=True),
    Index(None, "status", "next_at"),
)

# Portal codes (dsr/codes.py): one live code per address, known by a keyed hash of the
# address; the code itself only as an HMAC under a named secret.
portal_codes = Table(
    "portal_codes",
    metadata,
    Column("code_id", String(40), primary_key=True),
    Column("address_hash", LargeBinary, nullable=False, unique=True),
    Column("subject_id", String(40), nullable=False),
    Column("code_mac", LargeBinary, nullable=False),
    Column("tries", Integer, nullable=False),
    Column("created_at", UTCTime(), nullable=False),
    Column("expires_at", UTCTime(), nullable=False),
)

# What the portal code limits count: code requests and failed checks, per keyed hash of an
# e-mail address or of a client address, whether or not the address belongs to anyone.
portal_attempts = Table(
    "portal_attempts",
    metadata,
    Column("seq", BigInt, primary_key=True, autoincrement=True),
    Column("key_hash", LargeBinary, nullable=False),
    # request or failure
    Column("kind", String(12), nullable=False),
    Column("at", UTCTime(), nullable=False),
    Index(None, "key_hash", "kind", "at"),
)

# A customer's portal session (dsr/portal.py): found by the hash of its token; the verification
# its entry carried goes into the requests made through it. `link_id`: the minted link that
# opened it, which opens no second session.
portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("subject_id", String(40), nullable=False),
    Column("entry", String(16), nullable=False),
    Column("method", String(64), nullable=True),
    Column("level", String(12), nullable=True),
    Column("matched", Text, nullable=True),
    Column("link_id", String(32), nullable=True, unique=True),
    Column("created_at", UTCTime(), nullable=False),
    Column("idle_until", UTCTime(), nullable=False),
    Column("expires_at", UTCTime(), nullable=False),
    Index(None, "expires_at"),
)

# People who sign in to the pages (people/): the e-mail only as a keyed blind index (look-up)
# and sealed under a named secret bound to the person id (display); the TOTP secret sealed
# likewise; the password as an argon2id hash.
people = Table(
    "people",
    metadata,
    Column("person_id", String(40), primary_key=True),
    Column("role", String(16), nullable=False),
    # pending (enrolment not finished), active, disabled
    Column("status", String(12), nullable=False),
    Column("email_index", LargeBinary(32), nullable=False, unique=True),
    Column("email_ct", LargeBinary, nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("totp_ct", LargeBinary, nullable=True),
    # The last TOTP time step accepted: a code is accepted once.
    Column("totp_last_step", BigInt, nullable=True),
    # Consecutive failed sign-ins since the last success or lock.
    Column("failed_count", Integer, nullable=False),
    Column("locked_until", UTCTime(), nullable=True),
    Column("created_at", UTCTime(), nullable=False),
    Column("updated_at", UTCTime(), nullable=False),
    Column("enrolled_at", UTCTime(), nullable=True),
    Column("disabled_at", UTCTime(), nullable=True),
)

# One-time enrolment links, by the SHA-256 of their token (the token itself is never stored).
person_enrolments = Table(
    "person_enrolments",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column(
        "person_id",
        String(40),
        ForeignKey("people.person_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCTime(), nullable=False),
    Column("expires_at", UTCTime(), nullable=False),
    Column("used_at", UTCTime(), nullable=True),
)

# Signed-in sessions of the pages, by the SHA-256 of their token.
person_sessions = Table(
    "person_sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column(
        "person_id",
        String(40),
        ForeignKey("people.person_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCTime(), nullable=False),
    Column("last_seen_at", UTCTime(), nullable=False),
    # The absolute end, whatever the activity.
    Column("expires_at", UTCTime(), nullable=False),
)

# Data-protection impact assessments (governance/assessments.py), one per purpose: what was
# last computed for it (JSON), and its review. The reviewer's name and the DPO's advice, staff's
# free text, are in `sealed` under a named secret.
assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(64), primary_key=True),
    # not_required, or a review status: required, in_progress, approved, rejected,
    # prior_consultation
    Column("status", String(20), nullable=False),
    Column("required", Boolean, nullable=False),
    Column("score", Integer, nullable=False),
    # JSON: triggers, art35_3, criteria and the scope (event types, categories, systems, volumes)
    Column("computed", Text, nullable=False),
    Column("computed_at", UTCTime(), nullable=False),
    # Since when it has been required without a review that still holds (the 30-day alert).
    Column("required_since", UTCTime(), nullable=True),
    # The triggers the latest review saw (JSON list), and when and by whose key it was made.
    Column("reviewed_triggers", Text, nullable=True),
    Column("reviewed_at", UTCTime(), nullable=True),
    Column("review_actor", String(80), nullable=True),
    Column("sealed", LargeBinary, nullable=True),
    Column("updated_at", UTCTime(), nullable=False),
    Index(None, "required", "status", "required_since"),
)

# When the assessments were last computed, and at which configuration version.
assessment_state = Table(
    "assessment_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("config_version", BigInt, nullable=False),
    Column("computed_at", UTCTime(), nullable=False),
)
