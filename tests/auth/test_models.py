"""Roles and permissions: the table API.md defines, and what a principal may do by it."""

from __future__ import annotations

import pytest

from consentry.auth.models import ROLE_PERMISSIONS, Permission, Principal, Role, allows


def test_role_table_matches_the_contract() -> None:
    """API.md: admin may do everything; dpo everything but key management; the others
    only their own column."""
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert ROLE_PERMISSIONS[Role.DPO] == frozenset(Permission) - {Permission.KEYS_MANAGE}
    assert Permission.REQUESTS_MANAGE in ROLE_PERMISSIONS[Role.OPERATOR]
    assert Permission.CONSENT_WRITE not in ROLE_PERMISSIONS[Role.OPERATOR]
    assert {Permission.CONSENT_WRITE, Permission.EVENTS_WRITE, Permission.PORTAL_LINKS} <= (
        ROLE_PERMISSIONS[Role.COLLECTOR]
    )
    assert Permission.DATA_READ in ROLE_PERMISSIONS[Role.ANALYST]
    assert Permission.AUDIT_READ not in ROLE_PERMISSIONS[Role.ANALYST]
    assert {Permission.AUDIT_READ, Permission.ROPA_READ, Permission.COMPLIANCE_READ} <= (
        ROLE_PERMISSIONS[Role.AUDITOR]
    )
    assert Permission.DATA_READ not in ROLE_PERMISSIONS[Role.AUDITOR]
    assert Permission.DETOKENIZE in ROLE_PERMISSIONS[Role.DPO]
    for role in (Role.OPERATOR, Role.COLLECTOR, Role.ANALYST, Role.AUDITOR):
        assert Permission.DETOKENIZE not in ROLE_PERMISSIONS[role]
        assert Permission.KEYS_MANAGE not in ROLE_PERMISSIONS[role]


def test_every_role_has_a_row_and_no_row_exceeds_the_admin() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    for role in Role:
        assert ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[Role.ADMIN], role


@pytest.mark.parametrize("role", list(Role))
def test_a_principal_may_exactly_what_its_role_row_lists(role: Role) -> None:
    principal = Principal("k1", role)
    for permission in Permission:
        expected = permission in ROLE_PERMISSIONS[role]
        assert principal.may(permission) is expected
        assert allows(role, permission) is expected


def test_the_audit_actor_names_the_key() -> None:
    assert Principal("0123abcd", Role.AUDITOR).actor == "key:0123abcd"
