"""The second factor: RFC 6238 TOTP (pyotp), SHA-1, 6 digits, 30-second steps, each code
accepted once, on the product's clock."""

from __future__ import annotations

import hmac

import pyotp

from consentry import clock

ISSUER = "Consentry"
DIGITS = 6
STEP_SECONDS = 30
# Steps either side of now that are accepted: a phone's clock a little off, a code typed as
# it changes.
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads (as a QR code)."""
    return _totp(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def current_step() -> int:
    return int(clock.now().timestamp()) // STEP_SECONDS


def accepted_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step whose code `code` is, within DRIFT_STEPS of now and later than
    `last_step` (a code is used once), or None. Compared in constant time."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    now = current_step()
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        # Every step is compared, found or not, so the time does not say which matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
