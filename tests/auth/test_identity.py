"""auth/identity.py: identity secrets sealed under the KEK, and the proofs made with them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from consentry import clock
from consentry.audit.events import AuditAction
from consentry.auth.identity import proof
from consentry.errors import IdentitySecretNotFound, InvalidIdentityProof
from consentry.runtime import Runtime
from consentry.storage.schema import audit_entries, identity_secrets


def test_a_secret_is_stored_sealed_and_its_minting_audited(runtime: Runtime) -> None:
    with runtime.store.write() as conn:
        record, secret = runtime.identity_secrets.create(conn, "shop", actor="test")
    assert secret.startswith(f"cis_{record.secret_id}_")
    with runtime.store.read() as conn:
        row = conn.execute(select(identity_secrets)).one()
        actions = list(conn.execute(select(audit_entries.c.action)).scalars())
    assert secret.encode() not in bytes(row.secret_ct)
    assert secret not in repr(tuple(row))
    assert AuditAction.IDENTITY_SECRET_CREATED in actions


def test_proofs_hold_until_expiry_under_a_live_secret_only(runtime: Runtime) -> None:
    secrets = runtime.identity_secrets
    with runtime.store.write() as conn:
        record, secret = secrets.create(conn, "shop", actor="test")
        _, second = secrets.create(conn, "shop, rotated", actor="test")
    until = clock.rfc3339(clock.now() + timedelta(hours=23))
    secrets.verify("C-1", until, proof(secret, "C-1", until))
    secrets.verify("C-1", until, proof(second, "C-1", until))  # either live secret
    secrets.verify("C-1", until, proof(secret, "C-1", until).upper())
    for customer_id, expires_at, presented in (
        ("C-2", until, proof(secret, "C-1", until)),
        ("C-1", until, "0" * 64),
        ("C-1", until, "not hex"),
        ("C-1", until[:-1], proof(secret, "C-1", until[:-1])),  # no time zone
        ("C-1", "tomorrow", proof(secret, "C-1", "tomorrow")),
    ):
        with pytest.raises(InvalidIdentityProof):
            secrets.verify(customer_id, expires_at, presented)
    past = clock.rfc3339(clock.now() - timedelta(seconds=1))
    far = clock.rfc3339(clock.now() + timedelta(hours=24, minutes=6))
    for expires_at in (past, far):
        with pytest.raises(InvalidIdentityProof):
            secrets.verify("C-1", expires_at, proof(secret, "C-1", expires_at))
    with runtime.store.write() as conn:
        secrets.revoke(conn, record.secret_id, actor="test")
        assert [s.revoked_at is not None for s in secrets.list(conn)] == [True, False]
        with pytest.raises(IdentitySecretNotFound):
            secrets.revoke(conn, "0000", actor="test")
    with pytest.raises(InvalidIdentityProof):
        secrets.verify("C-1", until, proof(secret, "C-1", until))
    secrets.verify("C-1", until, proof(second, "C-1", until))
