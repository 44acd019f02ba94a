"""The oracle for the native core's differential tests: sealing and pseudonyms as Consentry
computed them in Python before the core (cryptography's AESGCM, the hmac module, msgspec's
JSON). Only tests use it; the product calls the core (consentry.native)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = b"\x01"  # sealed blob layout version: 0x01 || nonce(12) || ciphertext+tag
NONCE = 12
EVENT_AAD_PREFIX = b"consentry:event:"


class Refused(Exception):
    """The blob does not open."""


def seal(key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
    nonce = secrets.token_bytes(NONCE) if nonce is None else nonce
    return FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE + 16 or blob[:1] != FORMAT:
        raise Refused("layout")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE], blob[1 + NONCE :], aad)
    except InvalidTag:
        raise Refused("tag") from None


def event_aad(event_id: str) -> bytes:
    return EVENT_AAD_PREFIX + event_id.encode()


def field_pseudonym(key: bytes, field: str, value: object) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(field.encode() + b"\x00" + str(value).encode())
    return mac.hexdigest()


def system_pseudonym(secret: bytes, system_id: str, subject_id: str) -> str:
    key = hmac.digest(secret, b"system:" + system_id.encode(), "sha256")
    return hmac.new(key, subject_id.encode(), hashlib.sha256).hexdigest()


def shaped_row(
    keep: list[tuple[str, bool]],
    treat: list[tuple[str, bool]],
    properties: dict[str, Any],
    treated: dict[str, Any],
    subject_id: str,
    occurred_at: datetime,
) -> tuple[str, bytes | None, str, int]:
    """(stored clear JSON, plaintext of the sealed values or None, occurred_at's stored text,
    subject_key) of one event, as Consentry wrote them in Python before the core: msgspec's
    JSON with sorted keys, the time in UTC with microseconds and a Z."""
    clear: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for name, sealed in keep:
        (personal if sealed else clear)[name] = properties[name]
    for name, sealed in treat:
        (personal if sealed else clear)[name] = treated[name]
    encoder = msgspec.json.Encoder(order="sorted")
    at = occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return (
        encoder.encode(clear).decode(),
        encoder.encode(personal) if personal else None,
        at + "Z",
        int(subject_id[4:19], 16),
    )
