"""The key-encryption key (KEK) and AES-256-GCM sealing used for every key and personal value."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
from pathlib import Path

from consentry import native
from consentry.errors import InvalidSetting, KeyUnwrapFailed

log = logging.getLogger(__name__)

MASTER_KEY_FILE = "master.key"


class Sealer:
    """AES-256-GCM under one key, done by the native core (core/src/seal.rs: the stored layout
    0x01 || nonce(12) || ciphertext+tag, nonces from the OS random source); the AAD binds each
    blob to where it belongs."""

    __slots__ = ("native",)

    def __init__(self, key: bytes) -> None:
        """ValueError unless `key` is 32 bytes."""
        # The core's sealer, for its batch functions (native.seal_events, native.seal_batch).
        self.native = native.Sealer(key)

    def seal(self, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
        """Sealed under a fresh random nonce, or `nonce`: 12 bytes never used before (see
        nonces()). Many values at once: native.seal_batch, one call."""
        return self.native.seal(plaintext, aad, nonce)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt; KeyUnwrapFailed when the blob or its AAD was altered or the key is wrong."""
        try:
            return self.native.open(blob, aad)
        except native.OpenError as refused:
            raise KeyUnwrapFailed(str(refused)) from None


def nonces(count: int) -> list[bytes]:
    """`count` random nonces for seal() from one read of the system's random source."""
    return native.nonces(count)


class KeyEncryptionKey(Sealer):
    """The root key: wraps every data key, named secret and private signing key; never stored
    in the database."""

    __slots__ = ("kek_id",)

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        # Stored beside each wrapped key, so a wrong master key is named, not guessed at.
        self.kek_id = hashlib.sha256(b"consentry-kek-id\x00" + key).hexdigest()[:16]

    @classmethod
    def load(cls, master_key: str, data_dir: Path) -> KeyEncryptionKey:
        """From CONSENTRY_MASTER_KEY (base64url, 32 bytes), else from (or into) a 0600 file."""
        if master_key:
            return cls(_decode_master_key(master_key, "CONSENTRY_MASTER_KEY"))
        path = data_dir / MASTER_KEY_FILE
        if path.exists():
            return cls(_decode_master_key(path.read_text().strip(), str(path)))
        key = secrets.token_bytes(32)
        write_private_file(path, base64.urlsafe_b64encode(key).decode().rstrip("=") + "\n")
        log.warning(
            "No CONSENTRY_MASTER_KEY set: generated a key-encryption key into %s. "
            "For development only: in production, keep the master key outside the data directory.",
            path,
        )
        return cls(key)


def _decode_master_key(value: str, where: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", value):
        raise InvalidSetting(f"{where} must hold 32 bytes (base64url, 43 characters)")
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise InvalidSetting(f"{where} is not base64url") from None
    if len(key) != 32:
        raise InvalidSetting(f"{where} must hold 32 bytes (base64url, 43 characters)")
    return key


def write_private_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 atomically; never widen an existing file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
