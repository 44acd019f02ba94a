"""Roles, permissions and the table that joins them: the one place rights are defined."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    DPO = "dpo"
    OPERATOR = "operator"
    COLLECTOR = "collector"
    ANALYST = "analyst"
    AUDITOR = "auditor"


class Permission(StrEnum):
    KEYS_MANAGE = "keys:manage"  # API keys, key rotation
    CONFIG_WRITE = "config:write"  # purposes, notices, schemas, systems
    CONFIG_READ = "config:read"
    CONSENT_WRITE = "consent:write"  # grant, deny, withdraw
    CONSENT_CHECK = "consent:check"
    CONSENT_READ = "consent:read"  # a subject's state and history
    EVENTS_WRITE = "events:write"
    SUBJECTS_WRITE = "subjects:write"  # resolve or create a subject by its identities
    SUBJECTS_READ = "subjects:read"
    PORTAL_LINKS = "portal:links"
    REQUESTS_MANAGE = "requests:manage"  # data-subject requests
    DATA_READ = "data:read"  # purpose-scoped query, events, exports
    DETOKENIZE = "data:detokenize"
    AUDIT_READ = "audit:read"
    ROPA_READ = "ropa:read"
    COMPLIANCE_READ = "compliance:read"
    INCIDENTS_MANAGE = "incidents:manage"
    DELIVERY_MANAGE = "delivery:manage"  # resend dead-lettered deliveries, acknowledge notices


P = Permission

# API.md, Conventions: admin may do everything; dpo everything but key management.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.DPO: frozenset(Permission) - {P.KEYS_MANAGE},
    Role.OPERATOR: frozenset(
        {P.REQUESTS_MANAGE, P.CONSENT_READ, P.CONSENT_CHECK, P.SUBJECTS_READ, P.CONFIG_READ}
    ),
    Role.COLLECTOR: frozenset(
        {
            P.CONSENT_WRITE,
            P.CONSENT_CHECK,
            P.EVENTS_WRITE,
            P.SUBJECTS_WRITE,
            P.PORTAL_LINKS,
            P.CONFIG_READ,
        }
    ),
    Role.ANALYST: frozenset({P.DATA_READ, P.CONFIG_READ}),
    Role.AUDITOR: frozenset({P.AUDIT_READ, P.ROPA_READ, P.COMPLIANCE_READ, P.CONFIG_READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id (the audit actor) and its role."""

    key_id: str
    role: Role

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may(self, permission: Permission) -> bool:
        return allows(self.role, permission)


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    role: Role
    label: str
    created_at: datetime
    revoked_at: datetime | None
