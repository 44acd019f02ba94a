"""The one enum of audit action names (`domain:object:action`)."""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    APIKEY_CREATED = "apikey:created"
    APIKEY_REVOKED = "apikey:revoked"
    SUBJECT_CREATED = "subject:created"
    SUBJECT_IDENTITY_ADDED = "subject:identity:added"
    SUBJECT_JURISDICTION_SET = "subject:jurisdiction:set"
    SUBJECT_KEY_DESTROYED = "subject:key:destroyed"
    SIGNING_KEY_CREATED = "keys:signing:created"
    AUDIT_READ = "audit:entries:read"
    PURPOSE_CREATED = "purpose:created"
    PURPOSE_UPDATED = "purpose:updated"
    NOTICE_PUBLISHED = "notice:published"
    SCHEMA_UPDATED = "schema:updated"
    EVENTS_INGESTED = "events:batch:ingested"
    DATA_DETOKENIZED = "data:detokenized"
    DATA_QUERIED = "data:query"
    DATA_READ = "data:read"
    DATA_EXPORTED = "data:export"
    DATA_EXPORT_DOWNLOADED = "data:export:downloaded"
    CONSENT_GRANTED = "consent:granted"
    CONSENT_DENIED = "consent:denied"
    CONSENT_WITHDRAWN = "consent:withdrawn"
    SYSTEM_CREATED = "system:created"
    SYSTEM_UPDATED = "system:updated"
    SYSTEM_DELETED = "system:deleted"
    DELIVERY_REFUSED = "delivery:refused"
    DELIVERY_CANCELLED = "delivery:cancelled"
    DELIVERY_DEAD = "delivery:dead_lettered"
    DELIVERY_RESENT = "delivery:resent"
    RIGHTS_NOTICE_QUEUED = "rights_notice:queued"
    RIGHTS_NOTICE_ACKNOWLEDGED = "rights_notice:acknowledged"
    RIGHTS_NOTICE_OVERDUE = "rights_notice:overdue"
