"""Consent tokens: EdDSA JWTs carrying the granted purposes, the ledger version and notice hash."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from consentry.keys.signing import SigningKeys

ALGORITHM = "EdDSA"
_UNSEEN: Any = object()
_RELOAD_INTERVAL = 5.0


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
    not_after: datetime | None = None,
) -> ConsentToken:
    """Sign claims `iss sub pur ver nsh iat exp` with the active key (its `kid` in the header);
    `exp` is `lifetime` from now, or `not_after` when that comes first (whole seconds, never
    later than either)."""
    key = keys.active
    expires = now + lifetime if not_after is None else min(now + lifetime, not_after)
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


class TokenRefused(Exception):
    """A consent token that cannot be used; `code` is the event's rejection code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenVerifier:
    """Verifies each distinct token once (Ed25519 verify costs ~170 us) and remembers its
    claims; expiry is checked at every use, since a remembered token can lapse."""

    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        reload_keys: Callable[[], None],
        capacity: int = 100_000,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._reload_keys = reload_keys
        self._capacity = capacity
        self._known: dict[str, dict[str, Any] | None] = {}
        self._last_reload = float("-inf")

    def claims(self, token: str, subject_id: str, now: datetime) -> dict[str, Any]:
        """The claims of a valid token for `subject_id`; TokenRefused with the event code."""
        # One dictionary read: another thread may replace the dictionary meanwhile.
        found = self._known.get(token, _UNSEEN)
        claims: dict[str, Any] | None = found
        if found is _UNSEEN:
            claims, final = self._verify(token)
            if final:
                if len(self._known) >= self._capacity:
                    self._known = {}
                self._known[token] = claims
        if claims is None or claims.get("sub") != subject_id:
            raise TokenRefused("invalid_consent_token")
        if int(claims["exp"]) <= now.timestamp():
            raise TokenRefused("expired_consent_token")
        return claims

    def _verify(self, token: str) -> tuple[dict[str, Any] | None, bool]:
        """(claims or None, whether the answer is final): a token under a kid not published
        yet is refused now but judged again later, when the key may have been read."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = self._jwk(kid)
            if jwk is None:
                return None, False
            claims: dict[str, Any] = jwt.decode(
                token,
                jwt.PyJWK(jwk),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                # Expiry is judged at each use, against the clock of that moment.
                options={"verify_exp": False, "require": ["sub", "ver", "exp", "iat"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None, True
        if not isinstance(claims.get("ver"), int) or not isinstance(claims.get("exp"), int):
            return None, True
        return claims, True

    def _jwk(self, kid: object) -> dict[str, str] | None:
        """The published key `kid`; an unknown kid may be another process's new key, so the
        keys are read again once before the token is refused."""
        jwk = next((k for k in self._keys.jwks()["keys"] if k["kid"] == kid), None)
        now = time.monotonic()
        if jwk is not None or now - self._last_reload < _RELOAD_INTERVAL:
            return jwk
        # At most one read every few seconds, however many forged kids arrive.
        self._last_reload = now
        self._reload_keys()
        return next((k for k in self._keys.jwks()["keys"] if k["kid"] == kid), None)
