"""AES-256-GCM sealing, used for every key and personal value."""

from __future__ import annotations

from consentry import native
from consentry.errors import KeyUnwrapFailed


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
