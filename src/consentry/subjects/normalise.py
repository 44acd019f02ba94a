"""Identity normalisation: one spelling per person, so one blind index per identity."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from consentry.errors import InvalidIdentity, UnknownIdentityType
from consentry.subjects.models import Identity, IdentityType

MAX_LENGTH = 256
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def identity_type(raw: str) -> IdentityType:
    """The IdentityType called `raw`; UnknownIdentityType otherwise."""
    try:
        return IdentityType(raw)
    except ValueError:
        allowed = ", ".join(t.value for t in IdentityType)
        raise UnknownIdentityType(
            f"identity type {raw!r} is not one of {allowed}", identity_type=raw
        ) from None


def normalise(type_: IdentityType, value: str, default_region: str = "") -> Identity:
    """Return the canonical Identity, or raise InvalidIdentity naming what is wrong.

    E-mail is trimmed and lower-cased; phone becomes E.164 (a number without a country
    code needs `default_region`); other identifiers are trimmed and kept as given.
    """
    text = unicodedata.normalize("NFC", value).strip()
    if type_ is IdentityType.EMAIL:
        # Lower-casing may lengthen a string ("İ" becomes two code points): check after it.
        text = unicodedata.normalize("NFC", text.lower())
    if not text:
        raise InvalidIdentity(f"the {type_} identity is empty", identity_type=type_.value)
    # Control and invisible format characters (zero-width space, ...) would make one person
    # look like two.
    if len(text) > MAX_LENGTH or any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in text):
        raise InvalidIdentity(
            f"the {type_} identity is longer than {MAX_LENGTH} characters or has control "
            "characters or invisible format characters",
            identity_type=type_.value,
        )
    if type_ is IdentityType.EMAIL:
        if not _EMAIL.fullmatch(text):
            raise InvalidIdentity(
                "the email identity is not an e-mail address", identity_type="email"
            )
    elif type_ is IdentityType.PHONE:
        text = _e164(text, default_region)
    return Identity(type_, text)


def _e164(text: str, default_region: str) -> str:
    region = None if text.startswith("+") else (default_region or None)
    if region is None and not text.startswith("+"):
        raise InvalidIdentity(
            "the phone identity needs a country code (+44 ...), or CONSENTRY_DEFAULT_PHONE_REGION",
            identity_type="phone",
        )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity(
            "the phone identity is not a phone number", identity_type="phone"
        ) from None
    # "Possible" (length for the region), not "valid": reserved fictional and newly opened
    # ranges are real numbers for our purpose.
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity("the phone identity is not a possible number", identity_type="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
