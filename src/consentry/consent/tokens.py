"""Consent tokens: EdDSA JWTs carrying the granted purposes, the ledger version and notice hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from consentry.keys.signing import SigningKeys

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class ConsentToken:
    token: str
    expires_at: datetime


def issue(
    keys: SigningKeys,
    *,
    issuer: str,
    subject_id: str,
    purposes: list[str],
    version: int,
    notice_sha256: str | None,
    now: datetime,
    lifetime: timedelta,
) -> ConsentToken:
    """Sign claims `iss sub pur ver nsh iat exp` with the active key (its `kid` in the header)."""
    key = keys.active
    expires = now + lifetime
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject_id,
        "pur": sorted(purposes),
        "ver": version,
        "nsh": notice_sha256,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
    return ConsentToken(token, expires.replace(microsecond=0))
