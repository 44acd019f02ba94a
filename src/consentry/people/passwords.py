"""Passwords: the policy, and argon2id hashes (argon2-cffi) with rehash on new parameters."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consentry.errors import PasswordRejected
from consentry.people.records import local_part

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; this bounds the work a request can ask for
# A local part this short is in too many good passwords to forbid ("al@", "jo@").
MIN_LOCAL_PART = 3


def check_policy(password: str, email: str) -> None:
    """PasswordRejected (with `reason`) unless `password` has 12 to 1024 characters and does
    not contain the local part of `email` (in any case)."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(
            f"a password has at least {MIN_LENGTH} characters", reason="too_short"
        )
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"a password has at most {MAX_LENGTH} characters", reason="too_long")
    local = local_part(email).lower()
    if len(local) >= MIN_LOCAL_PART and local in password.lower():
        raise PasswordRejected(
            "a password may not contain the e-mail address's name", reason="contains_email"
        )


class Passwords:
    """argon2id hashing with argon2-cffi's parameters (or those given)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`. With no stored hash (an unknown e-mail, an
        account not enrolled) the same work is done against a hash of a random password, so
        the time taken does not tell whether the account exists."""
        if stored is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_urlsafe(24))
            stored = self._dummy
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than this hasher's."""
        return self._hasher.check_needs_rehash(stored)
