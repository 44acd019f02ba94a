"""Purposes: why data is processed, with a legal basis that is locked once used."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from functools import cache

from sqlalchemy import Connection

from consentry import clock
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.configuration import VersionedCopy
from consentry.consent.models import (
    SPECIAL_CATEGORY_CONDITIONS,
    AutomatedDecisionBasis,
    LegalBasis,
    Purpose,
    UsCaModel,
)
from consentry.errors import InvalidPurpose, LegalBasisLocked, TooManyPurposes, UnknownPurpose
from consentry.storage import consent as sql
from consentry.storage.configuration import bump_config_version
from consentry.storage.engine import AnyRow
from consentry.storage.errors import ConstraintViolation

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Stored events carry their purposes as bits of one signed 64-bit integer.
MAX_PURPOSES = 63


@cache
def fideslang_data_uses() -> frozenset[str]:
    """The data-use keys of fideslang's default taxonomy."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY  # noqa: PLC0415 - heavy, used rarely

    return frozenset(use.fides_key for use in DEFAULT_TAXONOMY.data_use)


def validate(purpose: Purpose) -> None:
    """Raise InvalidPurpose for a definition the law or the taxonomy does not allow."""
    if not KEY_PATTERN.fullmatch(purpose.key):
        raise InvalidPurpose("a purpose key is 1-64 of a-z, 0-9 and _, starting with a letter")
    if purpose.retention_days < 1 or purpose.consent_ttl_days < 1:
        raise InvalidPurpose("retention_days and consent_ttl_days must be at least 1")
    condition = purpose.special_category_condition
    if condition is not None and condition not in SPECIAL_CATEGORY_CONDITIONS:
        raise InvalidPurpose("special_category_condition is an Art. 9(2) letter, a to j")
    if (
        purpose.automated_decision_basis is AutomatedDecisionBasis.EXPLICIT_CONSENT
        and not purpose.needs_consent
    ):
        # Art. 22(2)(c): the decision rests on the person's own explicit grant of the purpose.
        raise InvalidPurpose("automated_decision_basis explicit_consent needs legal_basis consent")
    if purpose.data_use is not None and purpose.data_use not in fideslang_data_uses():
        raise InvalidPurpose(
            f"data_use {purpose.data_use!r} is not a fideslang data use", data_use=purpose.data_use
        )


class PurposeRegistry:
    """Every purpose, held in memory and reloaded when the configuration version moves."""

    def __init__(self) -> None:
        self._copy: VersionedCopy[dict[str, Purpose]] = VersionedCopy(_load, {})

    def all(self, conn: Connection, version: int | None = None) -> dict[str, Purpose]:
        """The current purposes (see VersionedCopy.get)."""
        return self._copy.get(conn, version)

    def cached(self) -> dict[str, Purpose]:
        """The purposes as last loaded, without touching storage (hot paths)."""
        return self._copy.last()

    def at(self, version: int) -> dict[str, Purpose] | None:
        """The purposes if held at configuration `version`, without touching storage."""
        return self._copy.at(version)

    def get(self, conn: Connection, key: str) -> Purpose:
        purpose = self.all(conn).get(key)
        if purpose is None:
            raise UnknownPurpose(f"no purpose {key!r}", purpose=key)
        return purpose

    def put(self, conn: Connection, purpose: Purpose, *, actor: str) -> tuple[Purpose, bool]:
        """Create or replace a purpose; LegalBasisLocked when a used purpose changes basis."""
        validate(purpose)
        try:
            with conn.begin_nested():
                return self._put(conn, purpose, actor)
        except ConstraintViolation:
            # Another request created the same purpose first: this one replaces it.
            return self._put(conn, purpose, actor)

    def _put(self, conn: Connection, purpose: Purpose, actor: str) -> tuple[Purpose, bool]:
        row = sql.get_purpose(conn, purpose.key, lock=True)
        existing = None if row is None else _purpose(row)
        if (
            existing is not None
            and existing.legal_basis_locked
            and existing.legal_basis is not purpose.legal_basis
        ):
            raise LegalBasisLocked(
                f"purpose {purpose.key!r} is in use with legal basis "
                f"{existing.legal_basis}; a new basis is a new purpose",
                purpose=purpose.key,
            )
        stored = replace(
            purpose,
            legal_basis_locked=existing.legal_basis_locked if existing else False,
            bit=existing.bit if existing else _free_bit(conn),
        )
        values = asdict(stored) | {"updated_at": clock.now()}
        values["legal_basis"] = stored.legal_basis.value
        values["us_ca_model"] = stored.us_ca_model.value
        basis = stored.automated_decision_basis
        values["automated_decision_basis"] = None if basis is None else basis.value
        sql.upsert_purpose(conn, values, exists=existing is not None)
        bump_config_version(conn)
        audit.record(
            conn,
            AuditAction.PURPOSE_UPDATED if existing else AuditAction.PURPOSE_CREATED,
            actor=actor,
            details={"purpose": purpose.key, "legal_basis": stored.legal_basis.value},
        )
        return stored, existing is None

    def mark_used(
        self, conn: Connection, keys: list[str], purposes: dict[str, Purpose] | None = None
    ) -> None:
        """Lock the legal basis of purposes a ledger entry, notice or event now refers to."""
        known = self.all(conn) if purposes is None else purposes
        unlocked = [k for k in keys if not known[k].legal_basis_locked]
        if unlocked:
            sql.lock_legal_basis(conn, unlocked)
            bump_config_version(conn)


def _free_bit(conn: Connection) -> int:
    used = sql.purpose_bits(conn)
    for bit in range(MAX_PURPOSES):
        if bit not in used:
            return bit
    raise TooManyPurposes(
        f"at most {MAX_PURPOSES} purposes; purposes cannot be deleted, so choose them with care"
    )


def _load(conn: Connection) -> dict[str, Purpose]:
    return {row.key: _purpose(row) for row in sql.list_purposes(conn)}


def _purpose(row: AnyRow) -> Purpose:
    return Purpose(
        key=row.key,
        name=row.name,
        legal_basis=LegalBasis(row.legal_basis),
        retention_days=row.retention_days,
        consent_ttl_days=row.consent_ttl_days,
        sale_or_share=row.sale_or_share,
        direct_marketing=row.direct_marketing,
        strictly_necessary=row.strictly_necessary,
        special_category_condition=row.special_category_condition,
        us_ca_model=UsCaModel(row.us_ca_model),
        retain_identities=row.retain_identities,
        data_use=row.data_use,
        automated_decision_basis=None
        if row.automated_decision_basis is None
        else AutomatedDecisionBasis(row.automated_decision_basis),
        bit=row.bit,
        description=row.description,
        legal_basis_locked=row.legal_basis_locked,
    )
