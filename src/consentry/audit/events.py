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
    AUDIT_HEAD_READ = "audit:head:read"
    AUDIT_PROOF_READ = "audit:proof:read"
    AUDIT_VERIFIED = "audit:log:verified"
    PURPOSE_CREATED = "purpose:created"
    PURPOSE_UPDATED = "purpose:updated"
    NOTICE_PUBLISHED = "notice:published"
    SCHEMA_UPDATED = "schema:updated"
    EVENTS_INGESTED = "events:batch:ingested"
    DATA_DETOKENIZED = "data:detokenized"
    CONSENT_GRANTED = "consent:granted"
    CONSENT_DENIED = "consent:denied"
    CONSENT_WITHDRAWN = "consent:withdrawn"
