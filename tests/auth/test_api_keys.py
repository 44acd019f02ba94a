"""API keys: minted once, stored only as a hash, refused once revoked, remembered briefly."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from consentry.audit.events import AuditAction
from consentry.auth import api_keys
from consentry.auth.models import Principal, Role
from consentry.errors import ApiKeyNotFound, InvalidRequest
from consentry.runtime import Runtime
from consentry.storage.schema import api_keys as api_keys_table
from consentry.storage.schema import audit_entries


def mint(rt: Runtime, role: Role = Role.COLLECTOR, label: str = "shop") -> tuple[str, str]:
    with rt.store.write() as conn:
        record, key = api_keys.create(conn, role, label, actor="test")
    return record.key_id, key


def authenticate(rt: Runtime, presented: str, admin_key: str = "") -> Principal | None:
    with rt.store.read() as conn:
        return api_keys.authenticate(conn, presented, admin_key)


def actions(rt: Runtime) -> list[str]:
    with rt.store.read() as conn:
        query = select(audit_entries.c.action).order_by(audit_entries.c.idx)
        return list(conn.execute(query).scalars())


def test_a_minted_key_authenticates_as_its_role_and_is_stored_only_as_a_hash(
    runtime: Runtime,
) -> None:
    key_id, key = mint(runtime, Role.ANALYST)
    assert key.startswith(f"csk_{key_id}_")
    principal = authenticate(runtime, key)
    assert principal is not None
    assert (principal.key_id, principal.role) == (key_id, Role.ANALYST)
    with runtime.store.read() as conn:
        row = conn.execute(select(api_keys_table)).one()
    assert bytes(row.key_hash) == hashlib.sha256(key.encode()).digest()
    assert key not in repr(tuple(row))
    assert actions(runtime)[-1] == AuditAction.APIKEY_CREATED


@pytest.mark.parametrize(
    "change",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # the secret altered
        lambda key: key.split("_", 2)[0] + "_" + key.split("_", 2)[1],  # no secret
        lambda key: key.replace("csk_", "cks_", 1),  # not a Consentry key
        lambda key: "csk_0000000000000000_" + key.split("_", 2)[2],  # another id
        lambda key: "",
    ],
)
def test_anything_but_the_exact_key_is_refused(
    runtime: Runtime, change: Callable[[str], str]
) -> None:
    _, key = mint(runtime)
    assert authenticate(runtime, change(key)) is None


def test_the_admin_key_from_the_environment_is_the_admin(runtime: Runtime) -> None:
    principal = authenticate(runtime, "env-admin-secret-0123456789", "env-admin-secret-0123456789")
    assert principal is not None
    assert (principal.key_id, principal.role) == (api_keys.ENV_ADMIN_ID, Role.ADMIN)
    # No admin key configured: an empty presented key is nobody.
    assert authenticate(runtime, "", "") is None


def test_a_revoked_key_is_refused_and_revoking_again_is_not_audited_twice(
    runtime: Runtime,
) -> None:
    key_id, key = mint(runtime)
    with runtime.store.write() as conn:
        first = api_keys.revoke(conn, key_id, actor="test")
    with runtime.store.write() as conn:
        again = api_keys.revoke(conn, key_id, actor="test")
    assert first.revoked_at is not None
    assert again.revoked_at == first.revoked_at
    assert authenticate(runtime, key) is None
    assert actions(runtime).count(AuditAction.APIKEY_REVOKED) == 1


def test_revoking_an_unknown_key_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(ApiKeyNotFound), runtime.store.write() as conn:
        api_keys.revoke(conn, "0000000000000000", actor="test")


def test_a_label_longer_than_the_limit_is_refused(runtime: Runtime) -> None:
    with runtime.store.write() as conn:
        api_keys.create(conn, Role.AUDITOR, "x" * api_keys.MAX_LABEL, actor="test")
    with pytest.raises(InvalidRequest), runtime.store.write() as conn:
        api_keys.create(conn, Role.AUDITOR, "x" * (api_keys.MAX_LABEL + 1), actor="test")


def test_list_pages_by_creation_and_never_shows_a_key(runtime: Runtime) -> None:
    made = [mint(runtime, label=f"k{n}") for n in range(3)]
    with runtime.store.read() as conn:
        first = api_keys.list_keys(conn, after=None, limit=2)
        last = first[-1]
        rest = api_keys.list_keys(conn, after=(last.created_at, last.key_id), limit=2)
    assert {k.key_id for k in first + rest} == {key_id for key_id, _ in made}
    assert len(first) == 2
    assert len(rest) == 1


def test_the_authenticator_remembers_a_good_key_for_its_ttl(runtime: Runtime) -> None:
    key_id, key = mint(runtime)
    authenticator = api_keys.Authenticator(admin_key="", ttl=0.3)
    assert authenticator.remembered(key) is None
    principal = authenticator.authenticate(runtime.store, key)
    assert principal is not None
    assert authenticator.remembered(key) == principal
    # Revoked behind its back (another process): still remembered until the ttl runs out.
    with runtime.store.write() as conn:
        api_keys.revoke(conn, key_id, actor="test")
    assert authenticator.authenticate(runtime.store, key) == principal
    time.sleep(0.35)
    assert authenticator.remembered(key) is None
    assert authenticator.authenticate(runtime.store, key) is None


def test_the_authenticator_forgets_a_key_revoked_in_this_process(runtime: Runtime) -> None:
    key_id, key = mint(runtime)
    other_id, other = mint(runtime)
    authenticator = api_keys.Authenticator(admin_key="", ttl=60)
    assert authenticator.authenticate(runtime.store, key) is not None
    assert authenticator.authenticate(runtime.store, other) is not None
    with runtime.store.write() as conn:
        api_keys.revoke(conn, key_id, actor="test")
    authenticator.forget(key_id)
    assert authenticator.authenticate(runtime.store, key) is None
    assert authenticator.remembered(other) is not None
    assert other_id != key_id


def test_the_authenticator_does_not_remember_a_refused_key(runtime: Runtime) -> None:
    authenticator = api_keys.Authenticator(admin_key="", ttl=60)
    assert authenticator.authenticate(runtime.store, "csk_0000000000000000_nothing") is None
    assert authenticator.remembered("csk_0000000000000000_nothing") is None
