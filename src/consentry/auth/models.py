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
    # Publishable, origin-bound, sent as X-Consentry-Key from a web page (API.md, Browser SDK).
    BROWSER = "browser"


class Permission(StrEnum):
    KEYS_MANAGE = "keys:manage"  # API keys, key rotation
    CONFIG_WRITE = "config:write"  # purposes, notices, schemas, systems, vendors, fideslang
    CONFIG_READ = "config:read"
    PURPOSES_READ = "purposes:read"  # purposes and notices: what a visitor is asked about
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
    ASSESSMENTS_READ = "assessments:read"  # impact assessments (Art. 35)
    ASSESSMENTS_WRITE = "assessments:write"  # record an assessment's review
    DELIVERY_MANAGE = "delivery:manage"  # resend dead-lettered deliveries, acknowledge notices
    LINEAGE_READ = "lineage:read"  # where a subject's data went (systems, times; no content)


P = Permission

# Every role that reads the configuration reads purposes and notices with it.
_CONFIG = frozenset({P.CONFIG_READ, P.PURPOSES_READ})

# API.md, Conventions: admin may do everything; dpo everything but key management.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.DPO: frozenset(Permission) - {P.KEYS_MANAGE},
    Role.OPERATOR: _CONFIG
    | {P.REQUESTS_MANAGE, P.CONSENT_READ, P.CONSENT_CHECK, P.SUBJECTS_READ, P.LINEAGE_READ},
    Role.COLLECTOR: _CONFIG
    | {P.CONSENT_WRITE, P.CONSENT_CHECK, P.EVENTS_WRITE, P.SUBJECTS_WRITE, P.PORTAL_LINKS},
    Role.ANALYST: _CONFIG | {P.DATA_READ},
    Role.AUDITOR: _CONFIG
    | {P.AUDIT_READ, P.ROPA_READ, P.COMPLIANCE_READ, P.ASSESSMENTS_READ, P.LINEAGE_READ},
    # Publishable: purposes and notices, and consent, token and events of the one subject a
    # request names (http/auth.py scopes each route a browser key may reach to that subject).
    Role.BROWSER: frozenset(
        {P.PURPOSES_READ, P.CONSENT_WRITE, P.CONSENT_CHECK, P.CONSENT_READ, P.EVENTS_WRITE}
    ),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id (the audit actor) and its role."""

    key_id: str
    role: Role
    # The web origins a browser key is honoured from (empty for every other role).
    origins: frozenset[str] = frozenset()

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
    origins: tuple[str, ...] = ()
